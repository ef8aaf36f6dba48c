# shellcheck shell=bash
# Sourced by the smoke tests (here and in ../kube/): checks that count, and a
# closing line "<what>: N passed, N failed".

checks_passed=0 checks_failed=0

# check DESCRIPTION WANT GOT
check() {
	if [ "$2" = "$3" ]; then
		checks_passed=$((checks_passed + 1))
		echo "ok   $1: $3"
	else
		checks_failed=$((checks_failed + 1))
		echo "FAIL $1: want '$2', got '$3'"
	fi
}

# fails DESCRIPTION TEXT CMD...: CMD must fail and its output contain TEXT.
fails() {
	local desc=$1 want=$2 out
	shift 2
	if out=$("$@" 2>&1); then
		check "$desc" "an error with '$want'" "success: $(echo "$out" | head -c 300)"
	elif [[ "$out" == *"$want"* ]]; then
		check "$desc" "$want" "$want"
	else
		check "$desc" "an error with '$want'" "$(echo "$out" | head -c 300)"
	fi
}

# poll SECONDS CMD...: runs CMD until it succeeds, for at most SECONDS.
poll() {
	local end=$(($(date +%s) + $1))
	shift
	until "$@"; do
		[ "$(date +%s)" -lt "$end" ] || return 1
		sleep 0.2
	done
}

# checks_summary WHAT: the closing line; fails if any check failed.
checks_summary() {
	echo "$1: $checks_passed passed, $checks_failed failed"
	[ "$checks_failed" -eq 0 ]
}
