#!/usr/bin/env bash
# Score the detector on a NAB-style corpus: the full set and each half of the
# files (path order), each half with its own optimised threshold.
#   internal/anomaly/cmd/nab/score.sh [NAB_DIR] [OUT_DIR]
set -euo pipefail
nab=${1:-../shared/nab}
out=${2:-$(mktemp -d)}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../../.."
go build -o "$out/nab" ./internal/anomaly/cmd/nab
for part in 0 1 2; do
	rm -rf "$out/h$part"
	"$out/nab" -data "$nab/data" -out "$out/h$part" -half "$part"
	echo "== half $part (0 = all files)"
	python3 "$nab/nab_score.py" "$out/h$part" --windows "$nab/labels/combined_windows.json" \
		--data-dir "$nab/data" --profile all --allow-missing --per-file "$out/h$part.perfile.csv" 2>/dev/null
done
