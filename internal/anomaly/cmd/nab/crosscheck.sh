#!/usr/bin/env bash
# Cross-check the runner's NAB scorer against another implementation of
# NAB's scoring (a Python script with NAB's command-line interface, as
# nab_score.py: RESULTS --windows --data-dir --profile all [--threshold T]).
# For each result directory and for each category of it alone, both score
# the results with an optimised threshold and at threshold T; the NAB
# scores must agree to 1e-6.
#   crosscheck.sh SCORER.py DATA_DIR LABELS.json T RESULTS_DIR...
set -euo pipefail
scorer=$1 data=$(cd "$2" && pwd) labels=$3 thr=$4
shift 4
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$here/../../../.." && go build -o "$tmp/nab" ./internal/anomaly/cmd/nab)
fail=0
check() { # name data-dir results-dir
	local name=$1 d=$2 r=$3
	"$tmp/nab" -data "$d" -labels "$labels" -score "$r" -threshold "$thr" |
		awk '/^NAB /{print $2, ($NF=="(fixed)") ? "fixed" : "opt", $(NF-(($NF=="(fixed)")?1:0))}' >"$tmp/go"
	rm -f "$tmp"/*.json
	if ! python3 "$scorer" "$r" --windows "$labels" --data-dir "$d" --profile all --allow-missing --json "$tmp/opt.json" >/dev/null 2>&1 ||
		! python3 "$scorer" "$r" --windows "$labels" --data-dir "$d" --profile all --allow-missing --threshold "$thr" --json "$tmp/fixed.json" >/dev/null 2>&1; then
		echo "$name: no NAB score (no anomaly windows?)"
		return
	fi
	{
		python3 -c 'import json,sys
for kind in ("opt", "fixed"):
    for det in json.load(open(sys.argv[1] + "/" + kind + ".json")).values():
        for p, r in det.items():
            print(p, kind, repr(r["normalized_score"]))' "$tmp"
	} >"$tmp/py"
	awk -v name="$name" 'NR==FNR{py[$1" "$2]=$3; next}
		{k=$1" "$2; n++; d=$3-py[k]; if (d<0) d=-d; if (d>m) m=d
		 if (!(k in py) || d>1e-6) {print "  MISMATCH", $0, "python", py[k]; bad=1}}
		END{printf "%s: %d scores compared, max |go-python| %.2g\n", name, n, m; exit bad}' "$tmp/py" "$tmp/go" || fail=1
}
for r in "$@"; do
	check "$r (all)" "$data" "$r"
	for cat in "$data"/*/; do
		cat=$(basename "$cat")
		rm -rf "$tmp/d" "$tmp/r"
		mkdir -p "$tmp/d/$cat" "$tmp/r"
		cp -rs "$data/$cat" "$tmp/d/$cat/"
		cp -rs "$(cd "$r" && pwd)/$cat" "$tmp/r/"
		check "$r ($cat)" "$tmp/d/$cat" "$tmp/r"
	done
done
exit $fail
