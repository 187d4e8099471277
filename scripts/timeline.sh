#!/usr/bin/env bash
# timeline.sh OUT_DIR - on a GPU host (bundle/ carried): the int8-fp8 wgmma kernels' phase timeline
# (sagejit run --timeline) at B4 H32 N4096, d128 and d64 with the default tiles and d128 with the two
# consumer warpgroups taking turns, each next to the same kernel timed without the stamps. Rows go to
# OUT_DIR/timeline-*.jsonl; benchmarks/timeline_report.py summarises them.
set -uo pipefail
OUT="${1:?usage: timeline.sh OUT_DIR}"
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
source scripts/device-env.sh "$PWD/bundle"
sj() { timeout 180 "$JAVA" $JAVA_OPTS -cp "$CP" dev.sagejit.cli.Main run --precision int8-fp8 --time --min-ms 200 "$@" 2>&1 \
    | grep -E "kernel:|timeline|->|PASS|FAIL|rror"; }
for args in "--shape 4x32x4096x128" "--shape 4x32x4096x64" "--shape 4x32x4096x128 --tiles wgm128n128w8s3"; do
    name="$(echo "$args" | tr -c 'a-z0-9' '_' | sed 's/__*/_/g; s/^_//; s/_$//')"
    echo "== $args (plain)"; sj $args
    echo "== $args (timeline)"; sj $args --timeline "$OUT/timeline-$name.jsonl"
done
