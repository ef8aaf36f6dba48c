#!/usr/bin/env bash
# Installs what building and testing ebpfflow needs, only what is missing, and
# mounts tracefs / bpffs when absent. Idempotent and quick when all is present:
# no `apt-get update` unless something has to be installed. Run as root.
set -euo pipefail

CLANG=${CLANG:-clang-19}
STRIP=${STRIP:-llvm-strip-19}

if [ "$(id -u)" != 0 ]; then
	echo "deps: must run as root (try: sudo make deps)" >&2
	exit 1
fi

# package -> a file it installs (dpkg status is the truth, the file a fast path).
# clang/llvm build the BPF objects (make generate); the rest are the servers,
# clients and netfilter tools the privileged and end-to-end tests drive.
declare -A want=(
	[${CLANG}]=/usr/bin/${CLANG}
	[llvm-${STRIP##*-}]=/usr/bin/${STRIP}
	[bpftool]=/usr/sbin/bpftool
	[libbpf-dev]=/usr/include/bpf/bpf_helpers.h
	[iproute2]=/usr/sbin/ip
	[iptables]=/usr/sbin/iptables
	[conntrack]=/usr/sbin/conntrack
	[tshark]=/usr/bin/tshark
	[curl]=/usr/bin/curl
	[wrk]=/usr/bin/wrk
	[nginx]=/usr/sbin/nginx
	[socat]=/usr/bin/socat
	[ncat]=/usr/bin/ncat
	[dnsutils]=/usr/bin/dig
	[dnsmasq-base]=/usr/sbin/dnsmasq
	[git]=/usr/bin/git
	[make]=/usr/bin/make
	[ca-certificates]=/etc/ssl/certs/ca-certificates.crt
	[openssl]=/usr/bin/openssl
	[jq]=/usr/bin/jq
)
missing=()
for pkg in "${!want[@]}"; do
	if [ -e "${want[$pkg]}" ]; then continue; fi
	if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then continue; fi
	missing+=("$pkg")
done

if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# tshark asks whether non-root users may capture; answer once, no prompt.
	echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections
	# Keep package scripts from starting daemons (nginx would take port 80);
	# the tests start their own servers with their own configs.
	policy=/usr/sbin/policy-rc.d
	added_policy=
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added_policy=1
	fi
	trap 'if [ -n "$added_policy" ]; then rm -f "$policy"; fi' EXIT
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}" >/dev/null
	echo "deps: installed"
else
	echo "deps: all packages present"
fi

# Go: the module needs the toolchain named in go.mod; say so rather than fail later.
if ! command -v go >/dev/null; then
	echo "deps: go is not on PATH; install Go >= $(awk '/^go /{print $2}' go.mod 2>/dev/null || echo 1.26)" >&2
	exit 1
fi

mounted() { awk -v p="$1" -v t="$2" '$2==p && $3==t {f=1} END {exit !f}' /proc/mounts; }

# tracefs: where tracepoint ids and formats live.
if ! mounted /sys/kernel/tracing tracefs; then
	mount -t tracefs nodev /sys/kernel/tracing && echo "deps: mounted tracefs on /sys/kernel/tracing"
fi
# bpffs: for pinning and for bpftool.
if ! mounted /sys/fs/bpf bpf; then
	mkdir -p /sys/fs/bpf && mount -t bpf bpf /sys/fs/bpf && echo "deps: mounted bpffs on /sys/fs/bpf"
fi
# cgroup v2: the flow probe attaches to its root. Hybrid hosts have it at
# /sys/fs/cgroup/unified; a v1-only host gets it mounted there.
if ! awk '$3=="cgroup2" {f=1} END {exit !f}' /proc/mounts; then
	mkdir -p /sys/fs/cgroup/unified && mount -t cgroup2 none /sys/fs/cgroup/unified &&
		echo "deps: mounted cgroup2 on /sys/fs/cgroup/unified"
fi
echo "deps: tracefs, bpffs and cgroup2 are mounted"
