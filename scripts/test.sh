#!/usr/bin/env bash
# test.sh - the project's test command, for a fresh machine without a GPU:
#   1. provisions NVRTC 12.9 and 13.0, cuobjdump and nvdisasm from NVIDIA's PyPI wheels into
#      .tools/site (once),
#   2. runs every CPU test with Maven (NVRTC must be found: compile tests may not skip),
#   3. compiles every kernel variant (all specs x all tile candidates) for sm_90a and sm_120a
#      through every NVRTC backend (JCuda over libnvrtc.so.12, FFM over .so.13 and .so.12);
#      any failure fails the script,
#   4. scripts/cache-demo.sh: a second process compiles nothing, corrupt entries are recompiled
#      with a warning,
#   5. runs examples/SafetensorsAttention.java against the built jar on the class path, then
#      scripts/module-check.sh: the jar as the named module dev.sagejit on the module path.
# GPU tests are tagged "gpu" and run on a GPU host through scripts/gpu-suite.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

pick_jdk() {
    if [[ -x /usr/lib/jvm/temurin-25-jdk-amd64/bin/java ]]; then echo /usr/lib/jvm/temurin-25-jdk-amd64; return; fi
    local best="" best_major=0 dir major
    for dir in /usr/lib/jvm/*/; do
        dir="${dir%/}"; [[ -f "$dir/release" && -x "$dir/bin/javac" ]] || continue
        major="$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$dir/release")"
        if [[ -n "$major" && "$major" -ge 22 && "$major" -gt "$best_major" ]]; then best="$dir"; best_major="$major"; fi
    done
    [[ -n "$best" ]] || { echo "test.sh: no JDK >= 22 under /usr/lib/jvm; install Temurin 25" >&2; exit 1; }
    echo "test.sh: notice: Temurin 25 not found, using $best" >&2
    echo "$best"
}
export JAVA_HOME="${JAVA_HOME_OVERRIDE:-$(pick_jdk)}"
export PATH="$JAVA_HOME/bin:$PATH"

SITE="$ROOT/.tools/site"
if [[ ! -e "$SITE/nvidia/cuda_nvrtc/lib/libnvrtc.so.12" || ! -e "$SITE/nvidia/cu13/lib/libnvrtc.so.13" ]]; then
    echo "test.sh: provisioning NVRTC from NVIDIA's wheels"
    mkdir -p "$ROOT/.tools/wheels" "$SITE"
    python3 -m pip download -q --no-deps --only-binary=:all: -d "$ROOT/.tools/wheels" \
        nvidia-cuda-nvrtc-cu12==12.9.86 nvidia-cuda-nvrtc==13.0.88
    for w in "$ROOT"/.tools/wheels/nvidia_cuda_nvrtc*.whl; do
        python3 -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$w" "$SITE"
    done
fi
# cuobjdump + nvdisasm (SASS checks of SassTest: which MMA instructions the kernels compile to).
if [[ ! -x "$SITE/nvidia/cu13/bin/cuobjdump" || ! -x "$SITE/nvidia/cu13/bin/nvdisasm" ]]; then
    echo "test.sh: provisioning cuobjdump and nvdisasm from NVIDIA's wheels"
    mkdir -p "$ROOT/.tools/wheels" "$SITE"
    python3 -m pip download -q --no-deps --only-binary=:all: -d "$ROOT/.tools/wheels" \
        nvidia-cuda-cuobjdump==13.5.37 nvidia-cuda-nvdisasm==13.5.37
    for w in "$ROOT"/.tools/wheels/nvidia_cuda_cuobjdump*.whl "$ROOT"/.tools/wheels/nvidia_cuda_nvdisasm*.whl; do
        python3 -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$w" "$SITE"
    done
    chmod +x "$SITE/nvidia/cu13/bin/cuobjdump" "$SITE/nvidia/cu13/bin/nvdisasm"  # zip keeps no modes
fi
export SAGEJIT_PYTHON_PATH="$SITE"
export SAGEJIT_CACHE_DIR="$(mktemp -d)"
trap 'rm -rf "$SAGEJIT_CACHE_DIR"' EXIT

echo "test.sh: CPU tests"
mvn -B package -Dsagejit.test.require-nvrtc=true

echo "test.sh: compiling every kernel variant for sm_90a and sm_120a through every NVRTC backend"
"$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -jar target/sagejit-*.jar \
    compile --all --all-tiles --arch sm_90a,sm_120a --backend all > "$SAGEJIT_CACHE_DIR/compile.log" \
    || { grep -v " compiled\$" "$SAGEJIT_CACHE_DIR/compile.log"; exit 1; }
tail -n 3 "$SAGEJIT_CACHE_DIR/compile.log"

echo "test.sh: the kernel cache across processes (scripts/cache-demo.sh: warm cache, corrupt entries)"
bash scripts/cache-demo.sh "$JAVA_HOME/bin/java" "$(ls target/sagejit-*.jar | grep -v -e sources -e javadoc | head -n 1):target/lib/*" \
    > "$SAGEJIT_CACHE_DIR/cache-demo.txt" 2>&1 || { cat "$SAGEJIT_CACHE_DIR/cache-demo.txt"; exit 1; }
grep -E "^== |wall" "$SAGEJIT_CACHE_DIR/cache-demo.txt"

echo "test.sh: the example pipeline (examples/SafetensorsAttention.java) against the built jar"
EXAMPLE_OUT="$SAGEJIT_CACHE_DIR/example.txt"
set +e
"$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -cp "$(ls target/sagejit-*.jar | grep -v -e sources -e javadoc | head -n 1):target/lib/*" \
    examples/SafetensorsAttention.java "$SAGEJIT_CACHE_DIR/qkv.safetensors" > "$EXAMPLE_OUT" 2>&1
example_rc=$?
set -e
grep -v WARNING "$EXAMPLE_OUT" || true
# Without a GPU the example must say so and exit 2; with one it must finish (exit 0).
if [[ $example_rc -eq 2 ]] && grep -q "no GPU" "$EXAMPLE_OUT"; then :
elif [[ $example_rc -ne 0 ]]; then echo "test.sh: the example failed (exit $example_rc)" >&2; exit 1; fi

echo "test.sh: sagejit as the module dev.sagejit (scripts/module-check.sh)"
scripts/module-check.sh
