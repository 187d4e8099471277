#!/usr/bin/env bash
# module-check.sh - sagejit used as the named module dev.sagejit: the built jar and its dependency
# jars on the module path, nothing on the class path.
#   1. the CLI runs as the module (picocli reaches the commands, FreeMarker the templates) and
#      compiles one kernel with NVRTC (no GPU needed);
#   2. examples/SafetensorsAttention.java runs against the exported API: exit 0 with a GPU, exit 2
#      saying "no GPU" without one;
#   3. a program that imports a package the module does not export (dev.sagejit.kernel) does not
#      compile.
# No run may warn about restricted methods: --enable-native-access=dev.sagejit,jcuda is all it needs.
# Needs `mvn package` first (target/sagejit-*.jar, target/lib) and NVRTC (SAGEJIT_PYTHON_PATH, as
# scripts/test.sh sets it); scripts/test.sh runs this script last.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
if [[ -z "${SAGEJIT_PYTHON_PATH:-}" && -d "$ROOT/.tools/site" ]]; then export SAGEJIT_PYTHON_PATH="$ROOT/.tools/site"; fi

jar="$(ls target/sagejit-*.jar 2>/dev/null | grep -v -e sources -e javadoc | head -n 1 || true)"
[[ -n "$jar" && -d target/lib ]] || { echo "module-check: no target/sagejit-*.jar or target/lib; run mvn package" >&2; exit 1; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
MODULES=(--module-path "$jar:target/lib" --enable-native-access=dev.sagejit,jcuda)

fail() { echo "module-check: $1" >&2; cat "$WORK/out" >&2; exit 1; }
no_restricted_warning() {
    if grep -q "restricted method" "$WORK/out"; then fail "$1 warned about native access"; fi
}

echo "module-check: the CLI as module dev.sagejit compiles a kernel"
"$JAVA_HOME/bin/java" "${MODULES[@]}" -m dev.sagejit/dev.sagejit.cli.Main compile --arch sm_90a > "$WORK/out" 2>&1 \
    || fail "sagejit compile failed on the module path"
grep -q " 0 failed" "$WORK/out" || fail "sagejit compile reported failures on the module path"
no_restricted_warning "sagejit compile"

echo "module-check: examples/SafetensorsAttention.java against the exported API"
set +e
"$JAVA_HOME/bin/java" "${MODULES[@]}" --add-modules dev.sagejit examples/SafetensorsAttention.java \
    "$WORK/qkv.safetensors" > "$WORK/out" 2>&1
rc=$?
set -e
if [[ $rc -eq 2 ]]; then
    grep -q "no GPU" "$WORK/out" || fail "the example exited 2 without saying 'no GPU'"
elif [[ $rc -ne 0 ]]; then
    fail "the example failed on the module path (exit $rc)"
fi
no_restricted_warning "the example"
tail -n 1 "$WORK/out"

echo "module-check: a non-exported package is out of reach"
mkdir "$WORK/probe"
cat > "$WORK/probe/Probe.java" <<'JAVA'
import dev.sagejit.kernel.SageInternals;

class Probe {
    Object internals = SageInternals.class;
}
JAVA
if "$JAVA_HOME/bin/javac" "${MODULES[@]:0:2}" --add-modules dev.sagejit -d "$WORK/probe" "$WORK/probe/Probe.java" \
    > "$WORK/out" 2>&1; then
    fail "a program importing dev.sagejit.kernel compiled against the module"
fi
grep -q "does not export it" "$WORK/out" || fail "javac refused the probe for another reason than the missing export"
echo "module-check: ok"
