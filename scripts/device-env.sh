#!/usr/bin/env bash
# device-env.sh - source this on the GPU host (bash) to use the bundle made by make-bundle.sh:
#   source scripts/device-env.sh [bundle-dir]      (default: <repo>/bundle)
# Unpacks bundle/jre.tar.xz to /tmp/jre once, then exports JAVA, JAVA_OPTS, CP (runtime jars),
# TEST_CP (unpacked tests + runtime jars; TEST_CLASSES is the test folder), SAGEJIT_NVRTC (if libnvrtc.so.13 exists) and
# SAGEJIT_CACHE_DIR. Run GPU tests with:
#   $JAVA $JAVA_OPTS -jar "$SAGEJIT_BUNDLE/test-lib/junit-platform-console-standalone.jar" execute \
#     --class-path "$TEST_CP" --include-tag gpu --scan-class-path "$TEST_CLASSES"
_sj_saved_opts="$(set +o)"
set -euo pipefail

_sj_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export SAGEJIT_BUNDLE="$(cd "${1:-$_sj_root/bundle}" && pwd)"

if [[ ! -x /tmp/jre/bin/java ]]; then
    rm -rf /tmp/jre.unpack
    mkdir -p /tmp/jre.unpack
    tar -C /tmp/jre.unpack -xJf "$SAGEJIT_BUNDLE/jre.tar.xz"
    rm -rf /tmp/jre
    mv /tmp/jre.unpack/jre /tmp/jre
    rm -rf /tmp/jre.unpack
fi
export JAVA=/tmp/jre/bin/java
export JAVA_OPTS="--enable-native-access=ALL-UNNAMED"

_sj_join() {
    local out="" f
    for f in "$@"; do
        [[ -e "$f" ]] || continue
        out="${out:+$out:}$f"
    done
    printf '%s' "$out"
}
export CP="$(_sj_join "$SAGEJIT_BUNDLE"/lib/*.jar)"
# JUnit's --scan-class-path finds tests in class-path directories, not in jars: unpack the tests.
export TEST_CLASSES=/tmp/sagejit-test-classes
rm -rf "$TEST_CLASSES"
mkdir -p "$TEST_CLASSES"
(cd "$TEST_CLASSES" && unzip -qo "$SAGEJIT_BUNDLE/test-lib/sagejit-tests.jar" 2>/dev/null) \
    || (cd "$TEST_CLASSES" && /tmp/jre/bin/jar xf "$SAGEJIT_BUNDLE/test-lib/sagejit-tests.jar" 2>/dev/null) \
    || python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
        "$SAGEJIT_BUNDLE/test-lib/sagejit-tests.jar" "$TEST_CLASSES"
export TEST_CP="$TEST_CLASSES:$(_sj_join "$SAGEJIT_BUNDLE"/lib/*.jar)"

if [[ -e /usr/local/cuda/lib64/libnvrtc.so.13 ]]; then
    export SAGEJIT_NVRTC=/usr/local/cuda/lib64/libnvrtc.so.13
fi
export SAGEJIT_CACHE_DIR=/tmp/sagejit-cache
mkdir -p "$SAGEJIT_CACHE_DIR"

echo "device-env: JAVA=$JAVA ($("$JAVA" -version 2>&1 | head -1)), $(tr ':' '\n' <<<"$CP" | wc -l) runtime jars," \
     "SAGEJIT_NVRTC=${SAGEJIT_NVRTC:-unset}"
unset -f _sj_join
unset _sj_root
eval "$_sj_saved_opts"  # restore the caller's shell options
unset _sj_saved_opts
