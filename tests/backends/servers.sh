# shellcheck shell=bash
# Sourced by the scripts that build, start and stop the test servers (here and
# in ../kube/): what they all do the same way.

# go_build_env: the Go settings of the Makefile (static binaries, and -trimpath
# so every build shares one build cache).
go_build_env() {
	export CGO_ENABLED=0
	local gf
	gf=" $(go env GOFLAGS) "
	export GOFLAGS="${gf// -trimpath / } -trimpath"
}

# free_port VAR: sets VAR to a random free TCP port on this machine, below the
# kernel's ephemeral range (so no outgoing connection takes it before the
# server binds it), and never the same one twice in one script.
free_ports_taken=" "
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 12000))
		[[ "$free_ports_taken" == *" $p "* ]] && continue
		[ -z "$(ss -Hltn "sport = :$p")" ] && break
	done
	free_ports_taken+="$p "
	printf -v "$1" %s "$p"
}

# stop_pidfile NAME PIDFILE EXE: stops the process recorded in PIDFILE with
# SIGTERM, then SIGKILL after 10 s, and removes PIDFILE. Only if it still runs
# EXE (a path, or a bare name matched against the executable's name): a stale
# pid may name another process by now.
stop_pidfile() {
	local name=$1 pidf=$2 want=$3 pid exe
	[ -f "$pidf" ] || return 0
	pid=$(cat "$pidf")
	exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
	exe=${exe% (deleted)}
	if [[ "$want" == */* ]]; then want=$(readlink -f "$want"); else exe=${exe##*/}; fi
	if [ -n "$exe" ] && [ "$exe" = "$want" ] && kill -TERM "$pid" 2>/dev/null; then
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		if kill -0 "$pid" 2>/dev/null; then
			kill -KILL "$pid"
			echo "stop: $name (pid $pid) did not exit on SIGTERM; killed"
		else
			echo "stop: $name (pid $pid) stopped"
		fi
	fi
	rm -f "$pidf"
}
