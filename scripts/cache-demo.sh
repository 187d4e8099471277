#!/usr/bin/env bash
# cache-demo.sh - the kernel cache across processes, on the machine it runs on (issue 2's "warm
# cache" check): a fresh cache folder; process 1 compiles; process 2 compiles nothing (every module
# "cached", in milliseconds); then every cached image is corrupted and process 3 warns, deletes the
# entries and recompiles. Usage: scripts/cache-demo.sh [JAVA CLASSPATH]  (defaults: the bundle's).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ $# -ge 2 ]]; then JAVA="$1"; CP="$2"; JAVA_OPTS="--enable-native-access=ALL-UNNAMED";
else source scripts/device-env.sh "$ROOT/bundle" >/dev/null 2>&1; fi
export SAGEJIT_CACHE_DIR="$(mktemp -d)"
compile() { "$JAVA" $JAVA_OPTS -cp "$CP" dev.sagejit.cli.Main compile --precision bf16 --head-dim 128 --arch sm_90a \
    --backend ffm 2>&1 | grep -v WARNING; }
status=0
step() {  # step NAME WANT: one process; its module lines must all end in WANT ("compiled" or "cached")
    echo "== $1"
    local s out
    s=$(date +%s%N)
    out="$(compile)"
    echo "$out"
    echo "   wall $(( ($(date +%s%N) - s) / 1000000 )) ms"
    if grep -E "^[a-z]" <<<"$out" | grep -vE "compiled, |$2\$" | grep -q .; then
        echo "cache-demo: FAILED: $1 has modules not $2" >&2
        status=1
    fi
    LAST="$out"
}
step "process 1 (empty cache)" compiled
step "process 2 (warm cache)" cached
echo "== corrupting every cached image"
for f in "$SAGEJIT_CACHE_DIR"/kernels/*/*.cubin; do printf 'garbage' > "$f"; echo "   $f"; done
step "process 3 (corrupt entries)" compiled
grep -q "is corrupt" <<<"$LAST" || { echo "cache-demo: FAILED: no warning about the corrupt entries" >&2; status=1; }
step "process 4 (warm again)" cached
rm -rf "$SAGEJIT_CACHE_DIR"
exit $status
