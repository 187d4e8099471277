#!/usr/bin/env bash
# make-bundle.sh - build sagejit and pack everything the GPU host needs into bundle/:
#   bundle/jre.tar.xz   a jlinked Java runtime (the GPU host has no Java)
#   bundle/lib/         sagejit-*.jar and its runtime dependency jars
#   bundle/test-lib/    sagejit-tests.jar (target/test-classes) + junit-platform-console-standalone.jar
#   bundle/examples/    the compiled examples/*.java
# On the GPU host: source scripts/device-env.sh, then e.g.
#   $JAVA $JAVA_OPTS -jar bundle/test-lib/junit-platform-console-standalone.jar execute \
#     --class-path "$TEST_CP" --include-tag gpu --scan-class-path "$TEST_CLASSES"
# (device-env.sh unpacks sagejit-tests.jar: JUnit scans class-path folders, not jars)
#   bundle/base/<commit>/ with BASE_REF="<git ref> ...": each commit's sagejit jar, for A/B timing in
#                       one device run (gpu-suite.sh headline benches them next to this build)
# Usage: [BASE_REF="<ref> ..."] scripts/make-bundle.sh   (from anywhere; fails if the bundle exceeds 60 MB)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUNDLE="$ROOT/bundle"
MAX_MB=60
JUNIT_CONSOLE_VERSION=1.14.1   # the platform release that pairs with junit-jupiter 5.14.1
JLINK_MODULES=java.base,java.desktop,java.logging,java.xml,jdk.unsupported,java.management

pick_jdk() {
    local preferred=/usr/lib/jvm/temurin-25-jdk-amd64
    if [[ -x "$preferred/bin/jlink" ]]; then
        echo "$preferred"
        return
    fi
    local best="" best_major=0 dir major
    for dir in /usr/lib/jvm/*/; do
        dir="${dir%/}"
        [[ -x "$dir/bin/jlink" && -f "$dir/release" ]] || continue
        major="$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$dir/release")"
        if [[ -n "$major" && "$major" -ge 22 && "$major" -gt "$best_major" ]]; then
            best="$dir"
            best_major="$major"
        fi
    done
    if [[ -z "$best" ]]; then
        echo "make-bundle: no JDK >= 22 with jlink under /usr/lib/jvm" >&2
        exit 1
    fi
    echo "make-bundle: notice: $preferred not found, using $best (Java $best_major)" >&2
    echo "$best"
}

export JAVA_HOME="$(pick_jdk)"
export PATH="$JAVA_HOME/bin:$PATH"
echo "make-bundle: JDK $JAVA_HOME"

echo "make-bundle: building (tests skipped)"
mvn -q -B -DskipTests package
[[ -d target/test-classes ]] || { echo "make-bundle: target/test-classes missing after build" >&2; exit 1; }

mkdir -p "$BUNDLE"
git -C "$ROOT" describe --always --dirty --abbrev=7 > "$BUNDLE/COMMIT" 2>/dev/null || echo unknown > "$BUNDLE/COMMIT"

# --- runtime image: rebuild only when missing or built from another JDK ---
JDK_STAMP="$JAVA_HOME $(sed -n 's/^JAVA_VERSION="\(.*\)"/\1/p' "$JAVA_HOME/release") $JLINK_MODULES raw+xz9e"
if [[ ! -f "$BUNDLE/jre.tar.xz" || ! -f "$BUNDLE/jre.stamp" || "$(cat "$BUNDLE/jre.stamp")" != "$JDK_STAMP" ]]; then
    echo "make-bundle: jlinking a runtime ($JLINK_MODULES)"
    WORK="$(mktemp -d)"
    trap 'rm -rf "$WORK"' EXIT
    # Uncompressed modules packed by xz -9e: 21 MB against 33 MB for zip-9 modules under xz (the device tool carries
    # at most 64 MiB with the checkout).
    "$JAVA_HOME/bin/jlink" --add-modules "$JLINK_MODULES" --strip-debug --no-header-files --no-man-pages \
        --compress=zip-0 --output "$WORK/jre"
    tar -C "$WORK" -cf - jre | xz -9e -T2 > "$BUNDLE/jre.tar.xz.tmp"
    mv "$BUNDLE/jre.tar.xz.tmp" "$BUNDLE/jre.tar.xz"
    echo "$JDK_STAMP" > "$BUNDLE/jre.stamp"
else
    echo "make-bundle: jre.tar.xz is up to date"
fi

# --- application jars ---
rm -rf "$BUNDLE/lib" "$BUNDLE/test-lib"
mkdir -p "$BUNDLE/lib" "$BUNDLE/test-lib"
shopt -s nullglob
app_jars=(target/sagejit-*.jar)
dep_jars=(target/lib/*.jar)
shopt -u nullglob
[[ ${#app_jars[@]} -ge 1 ]] || { echo "make-bundle: no target/sagejit-*.jar" >&2; exit 1; }
[[ ${#dep_jars[@]} -ge 1 ]] || { echo "make-bundle: no target/lib/*.jar" >&2; exit 1; }
cp "${app_jars[@]}" "${dep_jars[@]}" "$BUNDLE/lib/"
# JCuda's natives jar also holds the nvPTXCompiler binding (24 MB unpacked), which sagejit never
# loads (NVRTC compiles, the driver links): left out so the bundle and the tree fit one device call.
for natives in "$BUNDLE"/lib/jcuda-natives-*.jar; do
    zip -q -d "$natives" 'lib/libJNvPTXCompiler-*' || true
done

# --- the examples, compiled (the bundle's runtime has no compiler for source-file launches) ---
rm -rf "$BUNDLE/examples"
mkdir -p "$BUNDLE/examples"
"$JAVA_HOME/bin/javac" -d "$BUNDLE/examples" -cp "${app_jars[0]}:target/lib/*" examples/*.java

# --- test jars: the compiled tests plus the standalone JUnit console (it contains Jupiter) ---
"$JAVA_HOME/bin/jar" --create --file "$BUNDLE/test-lib/sagejit-tests.jar" -C target/test-classes .
mvn -q -B dependency:copy \
    -Dartifact="org.junit.platform:junit-platform-console-standalone:$JUNIT_CONSOLE_VERSION" \
    -DoutputDirectory="$BUNDLE/test-lib"
mv "$BUNDLE/test-lib/junit-platform-console-standalone-$JUNIT_CONSOLE_VERSION.jar" \
    "$BUNDLE/test-lib/junit-platform-console-standalone.jar"

# --- optional A/B bases: other commits' application jars (same dependencies), one folder each ---
rm -rf "$BUNDLE/base"
for ref in ${BASE_REF:-}; do
    BASE_SRC="$(mktemp -d)"
    git -C "$ROOT" worktree add --detach "$BASE_SRC/tree" "$ref" >/dev/null
    short="$(git -C "$BASE_SRC/tree" rev-parse --short HEAD)"
    echo "make-bundle: building the A/B base $ref ($short)"
    (cd "$BASE_SRC/tree" && mvn -q -B -o -DskipTests package)
    mkdir -p "$BUNDLE/base/$short"
    cp "$BASE_SRC"/tree/target/sagejit-*.jar "$BUNDLE/base/$short/"
    echo "$short" > "$BUNDLE/base/$short/COMMIT"
    git -C "$ROOT" worktree remove --force "$BASE_SRC/tree"
    rm -rf "$BASE_SRC"
done

size_kb="$(du -sk "$BUNDLE" | cut -f1)"
size_mb=$(( (size_kb + 1023) / 1024 ))
echo "make-bundle: bundle/ is ${size_mb} MB ($(ls "$BUNDLE/lib" | wc -l) lib jars, $(ls "$BUNDLE/test-lib" | wc -l) test jars)"
du -sh "$BUNDLE"/* | sed 's/^/  /'
if (( size_kb > MAX_MB * 1024 )); then
    echo "make-bundle: bundle exceeds ${MAX_MB} MB" >&2
    exit 1
fi
