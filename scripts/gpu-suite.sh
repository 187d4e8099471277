#!/usr/bin/env bash
# gpu-suite.sh - run on a GPU host with no Java and no network (the bundle brings Java): the
# GPU-tagged tests, sagejit's benchmarks and PyTorch SDPA's, in ONE run, writing everything to a
# results folder.
#   scripts/gpu-suite.sh OUT_DIR [smoke|tune|full]
#     probe: one checked call per default kernel (a hang or wrong answer shows in seconds);
#     smoke: + GPU tests; tune: + BF16 tile sweep at N 4096 and peers there; full: + every shape (BF16);
#     sage2-tune: smoke + int8-fp8 tile sweep at N 4096, SASS and peers there;
#     sage2: smoke + int8-fp8 SASS, int8-fp8 and BF16 against SDPA on every shape, accuracy on
#     identical inputs, Nsight Compute on one call (SKIP_NCU=1 leaves it out; TUNE_CASES=file adds
#     sagejit tune --gpus on those cases, written to tune.jsonl). SKIP_GPU_TESTS=1 / SKIP_PROBE=1 leave the GPU tests / the probe out of any mode;
#     GPU_TEST_SELECT=class#method(types) runs only that test method, GPU_TEST_CLASS=class[,class...] those classes.
#     autotune: sagejit tune on N 4096 int8-fp8 and bf16 cases, timed, then again from the database;
#     autotune-all: sagejit tune on 24 benchmark cases (TUNE_LIMIT seconds at most);
#     headline: int8-fp8, bf16 and SDPA at N 4096 only (a short check of new defaults; PROFILE=1 adds ncu;
#     TILES=list gives int8-fp8's --tiles, HEADLINE_SHAPES the shapes, ACCURACY=1 the FP64 accuracy on
#     identical inputs, SASS=1 the default kernels' SASS, PIPES=1 ncu's pipe counters of the attention
#     kernel of this build and every base (PIPES_TILES: tile configs, PIPES_SHAPE), CAUSAL=0|1|both
#     int8-fp8's masks, CHECK_TILES="key ..." each of those tile configs against FP64 first; with
#     bundle/base from make-bundle.sh BASE_REF="<ref> ...", int8-fp8 is timed from each of those builds
#     too, between two runs of this one);
#     power: int8-fp8 (POWER_TILES, this build and every base), bf16 and SDPA cuDNN, each rested and timed
#     TIMED_MS (1500) with NVML's power and clock sampled beside (power.txt: which cases sit at the power cap);
#     protocol: int8-fp8 and SDPA cuDNN timed back to back and with an idle gap (GAP_US, default 110) before every
#     timed call, rested like power mode and with its NVML samples (power.txt), then int8-fp8, bf16 and SDPA
#     (cuDNN, flash) as triton.testing.do_bench times; REPS (2) rounds;
#     rested: REPS rounds of int8-fp8, bf16 and SDPA at HEADLINE_SHAPES, every case after COOLDOWN_MS idle
#     (default 2000 here, none elsewhere; WARMUP_MS warm-up, 500 here, the tools' 300 elsewhere; TIMED_MS timed), with
#     nvidia-smi's clock log (the power cap's effect set apart);
#     tune-modes: sagejit tune over every GPU of the host (int8-fp8, fp16, int8-fp8-fp16 at N 4096)
#     and sagejit bench --peers auto;
#     bwd: training forward, backward and forward+backward of BWD_PRECISIONS (default bf16; e.g.
#     sagebwd,bf16) against SDPA's (with bundle/base, each base build's backward too, or AB_DIRECTION=both: its
#     forward, backward and forward+backward), then the
#     gradients' accuracy against FP64 on identical inputs, sagejit's and SDPA's (issue 5's bars); its probe
#     runs forward and backward of each of BWD_PRECISIONS on four small shapes and stops the run when one fails;
#     nvfp4: emulated NVFP4 against FP64 (Gaussian/peaky bars, N 1K-32K); nvfp4-tune: + sagejit tune
#     --gpus on TUNE_CASES (a --cases file, e.g. benchmarks/tune-cases/int8-modes.txt); tune-cases:
#     that tune alone.
# Every step runs under a timeout, so a kernel that hangs costs minutes, not the whole device call.
# Needs bundle/ from scripts/make-bundle.sh (carried to the host) and python3 with torch there.
set -uo pipefail
OUT_DIR="${1:?usage: gpu-suite.sh OUT_DIR [smoke|tune|full]}"
MODE="${2:-full}"
PRECS="${BWD_PRECISIONS:-bf16}"  # bwd mode: the training modes probed, timed and checked
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
mkdir -p "$OUT_DIR"
source scripts/device-env.sh "$ROOT/bundle"
export PYTHONUNBUFFERED=1
RUN="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
COMMIT="$(cat bundle/COMMIT 2>/dev/null || echo unknown)"
RESULTS="$OUT_DIR/results.jsonl"
# At most 8 files come back from a device call: results.jsonl, summary.md, gpu-tests.txt,
# mmasync.jsonl and the plot stay in OUT_DIR; everything else goes under EXTRA, packed into
# extras.tar.gz at the end.
EXTRA="$OUT_DIR/extras"
mkdir -p "$EXTRA"
status=0
step() { echo "=== $(date -u +%H:%M:%S) $*" >&2; }

step "device"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv 2>&1 | tee "$EXTRA/device.txt"

[[ "${SKIP_PROBE:-0}" == 1 ]] || step "probe: default kernels against FP64"
# bwd mode probes the training modes instead: forward and backward of small shapes (a hang costs a minute).
[[ "${SKIP_PROBE:-0}" == 1 || "$MODE" != bwd ]] || for prec in ${PRECS//,/ }; do
    for args in "--shape 2x4x1000x128" "--shape 2x4x1000x128 --causal" \
            "--shape 1x4x2x333x777x64 --layout bshd" "--shape 1x8x2x700x300x128 --causal --layout bshd"; do
        echo "sagejit run --backward $args --precision $prec" >&2
        timeout 60 "$JAVA" $JAVA_OPTS -cp "$CP" dev.sagejit.cli.Main run --backward $args --precision "$prec" 2>&1 \
            | tail -6 >&2 || status=1
    done
done
[[ "$MODE" != bwd || $status == 0 ]] || { echo "bwd probe failed: stopping before the timed runs" >&2; exit $status; }
[[ "${SKIP_PROBE:-0}" == 1 || "$MODE" == bwd ]] || for args in "--shape 2x4x1000x128" "--shape 2x4x1000x128 --causal" "--shape 1x4x2x333x777x64 --layout bshd" \
            "--shape 1x8x2x700x300x128 --causal --precision fp16" "--shape 1x4x4096x128 --time --min-ms 200" \
            "--shape 2x4x1000x128 --precision int8-fp8" "--shape 1x4x2x333x777x64 --layout bshd --causal --precision int8-fp8" \
            "--shape 1x8x1024x128 --precision int8-fp8-fp16 --inputs k-channel-offset" \
            "--shape 1x4x4096x128 --precision int8-fp8 --time --min-ms 200" "--shape 2x4x1000x128 --precision auto"; do
    echo "sagejit run $args --lse" >&2
    timeout 120 "$JAVA" $JAVA_OPTS -cp "$CP" dev.sagejit.cli.Main run $args --lse 2>&1 | tail -6 >&2 || status=1
done
[[ "$MODE" == probe ]] && exit $status

if [[ "${SKIP_GPU_TESTS:-0}" != 1 ]]; then
step "GPU tests${GPU_TEST_SELECT:+ (only $GPU_TEST_SELECT)}"
if [[ -n "${GPU_TEST_SELECT:-}" ]]; then select=(--select-method "$GPU_TEST_SELECT");
elif [[ -n "${GPU_TEST_CLASS:-}" ]]; then select=(); for c in ${GPU_TEST_CLASS//,/ }; do select+=(--select-class "$c"); done;
else select=(--scan-class-path "$TEST_CLASSES"); fi
timeout 600 "$JAVA" $JAVA_OPTS -jar "$SAGEJIT_BUNDLE/test-lib/junit-platform-console-standalone.jar" execute \
    --class-path "$TEST_CP" --include-tag gpu "${select[@]}" --disable-banner --details=tree \
    > "$OUT_DIR/gpu-tests.txt" 2>&1 || status=1
grep -E "tests (successful|failed|skipped|found)" "$OUT_DIR/gpu-tests.txt" >&2
grep -E "✘|MethodSource|Exception" "$OUT_DIR/gpu-tests.txt" | head -40 >&2
fi
if [[ "${SKIP_EXAMPLE:-0}" != 1 ]]; then
    step "the example pipeline (examples/SafetensorsAttention.java: safetensors in, bf16 and int8-fp8, errors vs FP64)"
    timeout 180 "$JAVA" $JAVA_OPTS -cp "$SAGEJIT_BUNDLE/examples:$CP" SafetensorsAttention /tmp/sagejit-example.safetensors \
        2>&1 | grep -v WARNING | tee "$EXTRA/example.txt" >&2 || status=1
fi
[[ "$MODE" == smoke ]] && exit $status

# The suite runs peers.py itself (with its own shapes and settings), so bench's own --peers stays off.
all_gpus() { nvidia-smi --query-gpu=index --format=csv,noheader | paste -sd, -; }  # "0,1,..." for --gpus
tune_cases() {  # sagejit tune over every GPU of the host on the TUNE_CASES file, rows into $1
    local gpus; gpus="$(all_gpus)"
    step "sagejit tune --gpus $gpus --cases ${TUNE_CASES:?set TUNE_CASES} (at most ${TUNE_LIMIT:-240} s)"
    timeout "${TUNE_LIMIT:-240}" "$JAVA" $JAVA_OPTS -cp "$CP" dev.sagejit.cli.Main tune --run "$RUN" --commit "$COMMIT" \
        --min-ms 100 --gpus "$gpus" --cases "$TUNE_CASES" --json "$1" --csv "$EXTRA/tune.csv" \
        | tee "$EXTRA/tune.txt" | grep -A40 "^summary" >&2 || status=1
}
# The classpath of another build's sagejit jar (a bundle/base/<commit>/ folder) with this bundle's dependencies.
base_cp() { echo "$(ls "$1"/sagejit-*.jar | head -1):$(tr ':' '\n' <<<"$CP" | grep -v '/sagejit-' | paste -sd:)"; }
# "commit classpath" of this build, then of every bundle/base build (make-bundle.sh BASE_REF), one per line.
builds() {
    echo "$COMMIT $CP"
    local d
    for d in bundle/base/*/; do [[ -d "$d" ]] && echo "$(cat "$d/COMMIT") $(base_cp "$d")"; done
    return 0
}
# BENCH_CP / BENCH_COMMIT time another build (the headline A/B) into the same results.
# The timing protocol of every timed case, sagejit's and SDPA's alike: WARMUP_MS / COOLDOWN_MS, when set,
# go to both (the rested mode sets its own); unset, both tools use their shared defaults (a 300 ms warm-up,
# FwdBenchmark.DEFAULT_WARMUP_MS, which peers.py's --warmup-time matches, PythonToolsTest; no cool-down).
# The H200's clock dips after idle and drops under its power cap (docs/perf-notes-int8fp8.md, session 11).
# Base builds older than 9292cfc do not know --warmup-ms.
if [[ "$MODE" == rested || "$MODE" == power || "$MODE" == protocol ]]; then
    COOLDOWN_MS="${COOLDOWN_MS:-2000}" WARMUP_MS="${WARMUP_MS:-500}"
fi
ms_to_s() { awk "BEGIN{print $1 / 1000}"; }
BENCH_PROTOCOL=() PEERS_PROTOCOL=()
if [[ -n "${WARMUP_MS:-}" ]]; then
    BENCH_PROTOCOL+=(--warmup-ms "$WARMUP_MS") PEERS_PROTOCOL+=(--warmup-time "$(ms_to_s "$WARMUP_MS")")
fi
if [[ -n "${COOLDOWN_MS:-}" ]]; then
    BENCH_PROTOCOL+=(--cooldown-ms "$COOLDOWN_MS") PEERS_PROTOCOL+=(--cooldown-time "$(ms_to_s "$COOLDOWN_MS")")
fi
bench() { timeout 420 "$JAVA" $JAVA_OPTS -cp "${BENCH_CP:-$CP}" dev.sagejit.cli.Main bench --peers off --out "$RESULTS" \
    --run "$RUN" --commit "${BENCH_COMMIT:-$COMMIT}" ${BENCH_PROTOCOL[@]+"${BENCH_PROTOCOL[@]}"} "$@"; }
peers() { timeout 300 python3 benchmarks/peers.py --out "$RESULTS" --run "$RUN" --commit "$COMMIT" \
    ${PEERS_PROTOCOL[@]+"${PEERS_PROTOCOL[@]}"} "$@"; }

check_tiles() {  # CHECK_TILES="key ...": each int8-fp8 tile config against FP64 (sagejit run, every row) on odd
                # lengths, causal, GQA and BSHD, before any timing of it counts; a key a shape's head dim
                # cannot run is reported and skipped
    local tiles shape
    for tiles in $CHECK_TILES; do
        step "check: int8-fp8 tiles $tiles against FP64"
        for shape in "--shape 2x4x1000x128" "--shape 2x4x1000x128 --causal" "--shape 1x8x2x700x1300x128 --causal" \
                     "--shape 1x4x2x333x777x64 --layout bshd" "--shape 1x4x2x333x777x64 --layout bshd --causal" \
                     "--shape 1x4x4096x128 --inputs k-channel-offset" "--shape 1x4x4096x64"; do
            timeout 120 "$JAVA" $JAVA_OPTS -cp "$CP" dev.sagejit.cli.Main run $shape --precision int8-fp8 --tiles "$tiles" \
                --lse --check-rows 0 2>&1 \
                | grep -E "PASS|FAIL|rror|cannot run" | sed "s|^|$tiles $shape: |" | tee -a "$OUT_DIR/check-tiles.txt" >&2
        done
    done
    grep -q FAIL "$OUT_DIR/check-tiles.txt" && status=1
}

sass() {  # SASS of the default int8-fp8 kernels: wgmma shows as IGMMA (INT8) and QGMMA (FP8)
    step "SASS of the int8-fp8 kernels"
    mkdir -p "$EXTRA/sass"
    for d in 64 128; do
        "$JAVA" $JAVA_OPTS -cp "$CP" dev.sagejit.cli.Main compile --precision int8-fp8 --head-dim "$d" --arch sm_90a \
            --backend ffm --emit-dir "$EXTRA/sass" >&2 || status=1
    done
    for f in "$EXTRA"/sass/*.cubin; do
        cuobjdump -sass "$f" > "${f%.cubin}.sass.txt" 2>&1 || status=1
        echo "$(basename "$f"): $(grep -c IGMMA "${f%.cubin}.sass.txt") IGMMA, $(grep -c QGMMA "${f%.cubin}.sass.txt") QGMMA,"\
            "$(grep -c HGMMA "${f%.cubin}.sass.txt") HGMMA, $(grep -cE '\b[IH]MMA\b' "${f%.cubin}.sass.txt") IMMA/HMMA" \
            | tee -a "$EXTRA/sass-summary.txt" >&2
    done
    rm -f "$EXTRA"/sass/*.cubin
}

pipes() {  # Nsight Compute's raw pipe counters for the int8-fp8 attention kernel (PIPES_SHAPE, default N 4096
           # D 128) of this build and of every bundle/base build: how busy the tensor (gmma), XU (MUFU), ALU
           # and FMA pipes are
    local shape="${PIPES_SHAPE:-4x32x4096x128}" tiles build cp
    while read -r -u 3 build cp; do
        for tiles in ${PIPES_TILES:-default}; do
            step "ncu: pipe utilization of the int8-fp8 attention kernel ($build, $tiles), $shape"
            mkdir -p "$EXTRA/ncu"
            local tile_args=()
            [[ "$tiles" == default ]] || tile_args=(--tiles "$tiles")
            local raw="$EXTRA/ncu/pipes-$build-$tiles-raw.csv"
            timeout 180 ncu --section ComputeWorkloadAnalysis --section InstructionStats --page raw --csv \
                --kernel-name regex:sagejit_fwd --launch-count 1 "$JAVA" $JAVA_OPTS -cp "$cp" dev.sagejit.cli.Main run \
                --shape "$shape" --precision int8-fp8 "${tile_args[@]}" > "$raw" 2> "${raw%.csv}.log" \
                || echo "ncu failed (exit $?): see ${raw%.csv}.log" >&2
            echo "== $build $tiles $shape" >> "$OUT_DIR/pipes.txt"
            python3 - "$raw" <<'PY' | grep 'avg.pct_of_peak_sustained_active' | tee -a "$OUT_DIR/pipes.txt" >&2
import csv, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 5]
head = next(r for r in rows if "ID" in r)
for r in rows[rows.index(head) + 1:]:
    if len(r) != len(head) or "sagejit_fwd" not in " ".join(r):
        continue
    for name, value in zip(head, r):
        if ("pipe" in name or "issue_active" in name or "inst_executed" in name) and "pct" in name:
            print("%-90s %s" % (name, value))
PY
        done
    done 3< <(builds)
}

profile() {  # Nsight Compute on one int8-fp8 call at N 4096 D 128: per-kernel time and throughput,
             # and for the attention kernel the full set with per-instruction stall samples
    step "ncu: the int8-fp8 quantizers and attention kernel, B4 H32 N4096 D128"
    mkdir -p "$EXTRA/ncu"
    local run=(-cp "$CP" dev.sagejit.cli.Main run --shape 4x32x4096x128 --precision int8-fp8)
    timeout 180 ncu --section SpeedOfLight --section Occupancy --csv --page details --launch-count 5 \
        "$JAVA" $JAVA_OPTS "${run[@]}" > "$EXTRA/ncu/all.csv" 2> "$EXTRA/ncu/all.log" \
        || echo "ncu failed (exit $?): see ncu/all.log" >&2
    grep -E '"(Duration|DRAM Throughput|Compute \(SM\) Throughput)"' "$EXTRA/ncu/all.csv" \
        | awk -F'","' '{print $5" | "$(NF-2)" | "$(NF-1)" "$NF}' >&2
    timeout 240 ncu --set full --import-source yes --kernel-name regex:'sagejit_fwd|sage2_quant' --launch-count 5 \
        -o "$EXTRA/ncu/attn" "$JAVA" $JAVA_OPTS "${run[@]}" > "$EXTRA/ncu/attn.log" 2>&1 \
        || echo "ncu --set full failed (exit $?): see ncu/attn.log" >&2
    if [[ -f "$EXTRA/ncu/attn.ncu-rep" ]]; then
        ncu --import "$EXTRA/ncu/attn.ncu-rep" --csv --page details > "$EXTRA/ncu/attn-details.csv" 2>&1
        ncu --import "$EXTRA/ncu/attn.ncu-rep" --csv --page source --print-source sass > "$EXTRA/ncu/attn-sass.csv" 2>&1 \
            || echo "ncu source page failed" >&2
        python3 benchmarks/ncu_stalls.py "$EXTRA/ncu/attn-sass.csv" --top 8 >&2 || true
        rm -f "$EXTRA/ncu/attn.ncu-rep"  # large; the CSV pages keep what we read
    fi
}

sage2_accuracy() {  # int8-fp8 (default tiles) and SDPA against FP64 on the same saved inputs, N 4096
    # Every row (--check-rows 0): heavy-tailed errors sit in a few rows, so a row sample's cosine
    # swings with the rows it happens to hold.
    step "accuracy against FP64 on identical inputs: SDPA (torch FP64 reference) and sagejit (CPU FP64, all rows)"
    rm -rf /tmp/sagejit-acc
    peers --no-forward --accuracy --save-inputs /tmp/sagejit-acc --shapes 1x4x4096x128,1x4x4096x64 \
        --inputs gaussian,k-channel-offset,heavy-tail --causal both --dtype bf16 --backends flash,cudnn || status=1
    # More draws of the heavy-tailed family (its error moves with the few largest entries of a draw).
    for seed in ${HEAVY_SEEDS:-}; do
        peers --no-forward --accuracy --save-inputs "/tmp/sagejit-acc/seed$seed" --seed "$seed" \
            --shapes 1x4x4096x128 --inputs heavy-tail --causal both --dtype bf16 --backends cudnn || status=1
    done
    # sagejit on every saved input set, labelled as peers.py labelled SDPA's rows (meta.json "inputs").
    for d in /tmp/sagejit-acc/*/ /tmp/sagejit-acc/seed*/*/; do
        [[ -f "$d/meta.json" ]] || continue
        label="$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['inputs'])" "$d/meta.json")"
        for causal in "" --causal; do
            "$JAVA" $JAVA_OPTS -cp "$CP" dev.sagejit.cli.Main run --commit "$COMMIT" --q "$d/q.npy" --k "$d/k.npy" --v "$d/v.npy" \
                --precision int8-fp8 $causal --check-rows 0 --results "$RESULTS" --run "$RUN" --label "$label" \
                | grep -E "PASS|FAIL" | sed "s|^|$(basename "$d") $label ${causal:-full} int8-fp8 |" || status=1
        done
    done
}

# NVML's power and clock sampled beside the cases of the power and protocol modes: power_sampling starts it,
# `marked LABEL command...` runs a command and notes its window, power_report writes power.txt / power.jsonl.
power_sampling() {
    marks="$EXTRA/power-marks.txt"
    python3 benchmarks/probes/nvml_power.py sample "$EXTRA/power.csv" & sampler=$!
}
marked() {
    local label="$1" t0; shift
    t0="$(date +%s.%N)"
    "$@" || status=1
    echo "$t0 $(date +%s.%N) $label" >> "$marks"
}
power_report() {
    kill "$sampler" 2>/dev/null
    python3 benchmarks/probes/nvml_power.py report "$EXTRA/power.csv" "$marks" --jsonl "$OUT_DIR/power.jsonl" --run "$RUN" \
        --commit "$COMMIT" --gpu "$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)" | tee "$OUT_DIR/power.txt" >&2
}

if [[ "$MODE" == sage2-tune ]]; then
    sass
    step "int8-fp8 tile sweep"
    bench --tiles all --causal both --precision int8-fp8 --min-ms 150 --shapes 4x32x4096x128,4x32x4096x64 || status=1
    step "peers"
    [[ "${SKIP_PEERS:-0}" == 1 ]] || peers --shapes 4x32x4096x128,4x32x4096x64 --causal both --backends flash,cudnn || status=1
elif [[ "$MODE" == sage2 ]]; then
    sass
    SHAPES="4x32x1024x128,4x32x2048x128,4x32x4096x128,4x32x8192x128,4x32x16384x128,4x32x32768x128"
    SHAPES="$SHAPES,${SHAPES//x128/x64}"
    step "sagejit int8-fp8 (kernel and end-to-end) and bf16"
    bench --tiles default --causal both --precision int8-fp8,bf16 --min-ms 150 --warmup 3 --shapes "$SHAPES" || status=1
    step "the portable int8-fp8 mma.sync kernel (sm_89/sm_120a form) on this GPU, for reference"
    "$JAVA" $JAVA_OPTS -cp "$CP" dev.sagejit.cli.Main bench --peers off --out "$OUT_DIR/mmasync.jsonl" --run "$RUN" \
        --commit "$COMMIT" --tiles m64n64w4s2 --causal both --precision int8-fp8 --min-ms 150 \
        ${BENCH_PROTOCOL[@]+"${BENCH_PROTOCOL[@]}"} --shapes 4x32x4096x128,4x32x4096x64 2>&1 | tail -9 >&2 || status=1
    step "peers"
    peers --shapes "$SHAPES" --causal both --dtype bf16 --backends flash,cudnn --warmup 3 --min-iters 5 --min-time 0.3 \
        || status=1
    sage2_accuracy
    [[ "${SKIP_NCU:-0}" == 1 ]] || profile
    [[ -z "${TUNE_CASES:-}" ]] || tune_cases "$OUT_DIR/tune.jsonl"
elif [[ "$MODE" == tune-cases ]]; then
    tune_cases "$RESULTS"
elif [[ "$MODE" == autotune ]]; then
    run_tune() { local limit="$1"; shift; timeout "$limit" "$JAVA" $JAVA_OPTS -cp "$CP" dev.sagejit.cli.Main tune \
        --run "$RUN" --commit "$COMMIT" --min-ms 150 "$@"; }
    n=0
    for args in "--precision int8-fp8 --shapes 4x32x4096x128 --causal both" "--precision int8-fp8 --shapes 4x32x4096x64 --causal 0" \
                "--precision bf16 --shapes 4x32x4096x128 --causal 0"; do
        n=$((n + 1))
        step "sagejit tune $args --force (compiles included)"
        start=$SECONDS
        run_tune 400 $args --force --json "$RESULTS" --csv "$EXTRA/tune-$n.csv" | tee -a "$EXTRA/tune.txt" || status=1
        echo "tune wall time: $((SECONDS - start)) s" | tee -a "$EXTRA/tune.txt" >&2
        step "the same again: answered from the tuning database"
        start=$SECONDS
        run_tune 120 $args | tee -a "$EXTRA/tune.txt" || status=1
        echo "second tune wall time: $((SECONDS - start)) s" | tee -a "$EXTRA/tune.txt" >&2
    done
elif [[ "$MODE" == headline ]]; then
    H_SHAPES="${HEADLINE_SHAPES:-4x32x4096x128,4x32x4096x64}"
    [[ -z "${CHECK_TILES:-}" ]] || check_tiles
    step "int8-fp8 (tiles ${TILES:-default}) and bf16 (default) and SDPA at $H_SHAPES, causal or not"
    bench --tiles "${TILES:-default}" --causal "${CAUSAL:-both}" --precision int8-fp8 --min-ms 150 --warmup 3 --shapes "$H_SHAPES" \
        || status=1
    if [[ -d bundle/base ]]; then  # A/B: the same cases from each base build (make-bundle.sh BASE_REF)
        for base_dir in bundle/base/*/; do
            BASE_COMMIT="$(cat "$base_dir/COMMIT")"
            step "A/B: int8-fp8 from the base build $BASE_COMMIT (rows carry its commit)"
            BENCH_CP="$(base_cp "$base_dir")" BENCH_COMMIT="$BASE_COMMIT" bench --tiles "${TILES:-default}" --causal "${CAUSAL:-both}" \
                --precision int8-fp8 --min-ms 150 --warmup 3 --shapes "$H_SHAPES" || status=1
        done
        step "int8-fp8 from this build again (order effects)"
        bench --tiles "${TILES:-default}" --causal "${CAUSAL:-both}" --precision int8-fp8 --min-ms 150 --warmup 3 \
            --shapes "$H_SHAPES" || status=1
    fi
    bench --tiles default --causal both --precision bf16 --min-ms 150 --warmup 3 --shapes "$H_SHAPES" || status=1
    peers --shapes "$H_SHAPES" --causal both --dtype bf16 --backends flash,cudnn --warmup 3 \
        --min-iters 5 --min-time 0.3 || status=1
    [[ "${ACCURACY:-0}" != 1 ]] || sage2_accuracy
    [[ "${SASS:-0}" != 1 ]] || sass
    [[ "${PROFILE:-0}" != 1 ]] || profile
    [[ "${PIPES:-0}" != 1 ]] || pipes
elif [[ "$MODE" == rested ]]; then
    # Every case from a rested GPU, REPS times in turn: sagejit (int8-fp8 kernel and end-to-end, bf16) and
    # SDPA's flash and cuDNN each idle COOLDOWN_MS first (bench / peers above), warm up WARMUP_MS, time TIMED_MS. Under
    # sustained load the H200 reaches its 700 W cap and lowers its clock, more for some kernels than others
    # (the sage2 grid is timed in that state); nvidia-smi logs the clock beside (extras/clocks.csv).
    H_SHAPES="${HEADLINE_SHAPES:-4x32x4096x128}"
    TM="${TIMED_MS:-300}"
    nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu,clocks_event_reasons.active \
        --format=csv,noheader -lms 50 > "$EXTRA/clocks.csv" 2>/dev/null & smi=$!
    for rep in $(seq "${REPS:-3}"); do
        step "rested protocol, round $rep: cool-down $COOLDOWN_MS ms, warm-up $WARMUP_MS ms, timed $TM ms per case at $H_SHAPES"
        bench --causal "${CAUSAL:-0}" --precision int8-fp8,bf16 --min-ms "$TM" --warmup 3 --shapes "$H_SHAPES" || status=1
        peers --shapes "$H_SHAPES" --causal "${CAUSAL:-0}" --dtype bf16 --backends flash,cudnn --warmup 3 \
            --min-iters 5 --min-time "$(ms_to_s "$TM")" || status=1
    done
    kill "$smi" 2>/dev/null
elif [[ "$MODE" == power ]]; then
    # Which kernels sit at the power cap: every case from a rested GPU (COOLDOWN_MS), warmed up WARMUP_MS and
    # timed TIMED_MS, with NVML's energy counter, power, SM clock and clock-event reasons sampled beside
    # (benchmarks/probes/nvml_power.py); int8-fp8 at POWER_TILES from this build and every bundle/base build,
    # then bf16 and SDPA cuDNN. power.txt and power.jsonl: mean clock and power of each timed case's steady second.
    H_SHAPES="${HEADLINE_SHAPES:-4x32x4096x128}"
    TM="${TIMED_MS:-1500}"
    power_sampling
    while read -r -u 3 commit cp; do
        for tiles in ${POWER_TILES:-default}; do
            step "power: int8-fp8 $tiles from $commit at $H_SHAPES"
            BENCH_CP="$cp" BENCH_COMMIT="$commit" marked "int8-fp8 $tiles $commit" bench --tiles "$tiles" --causal 0 \
                --precision int8-fp8 --min-ms "$TM" --warmup 3 --shapes "$H_SHAPES"
        done
    done 3< <(builds)
    step "power: bf16 and SDPA cuDNN at $H_SHAPES"
    marked "bf16 default $COMMIT" bench --causal 0 --precision bf16 --min-ms "$TM" --warmup 3 --shapes "$H_SHAPES"
    marked "sdpa-cudnn" peers --shapes "$H_SHAPES" --causal 0 --dtype bf16 --backends cudnn --warmup 3 --min-iters 5 \
        --min-time "$(ms_to_s "$TM")"
    power_report
elif [[ "$MODE" == protocol ]]; then
    # Whether idle gaps between timed calls move the comparison: int8-fp8 (kernel and end-to-end) and SDPA cuDNN
    # at HEADLINE_SHAPES, REPS rounds, each round timing both protocols in turn: back to back (sagejit --gap-us 0,
    # peers.py --sleep-every 0, the defaults) and with an idle gap before every timed call (sagejit --gap-us
    # GAP_US, peers.py --sleep-every 1, which was peers.py's only protocol before). Every case rested
    # COOLDOWN_MS, warmed up WARMUP_MS and timed TIMED_MS, with NVML sampled beside (power.txt).
    H_SHAPES="${HEADLINE_SHAPES:-4x32x4096x128}"
    TM="${TIMED_MS:-1500}"
    power_sampling
    for rep in $(seq "${REPS:-2}"); do
        for protocol in "0 0" "${GAP_US:-110} 1"; do  # 110 us: TimingProtocol.PEER_SLEEP_GAP_US
            read -r gap every <<<"$protocol"
            step "protocol round $rep: sagejit --gap-us $gap, peers.py --sleep-every $every at $H_SHAPES"
            marked "int8-fp8 gap-us $gap round $rep" bench --causal 0 --precision int8-fp8 --gap-us "$gap" \
                --min-ms "$TM" --warmup 3 --shapes "$H_SHAPES"
            marked "sdpa-cudnn sleep-every $every round $rep" peers --shapes "$H_SHAPES" --causal 0 --dtype bf16 \
                --backends cudnn --warmup 3 --min-iters 5 --min-time "$(ms_to_s "$TM")" --sleep-every "$every"
        done
        # triton.testing.do_bench's protocol (shared/DEVICE.md's peer figures, issue 3's calibration): SDPA through
        # do_bench itself, sagejit with its 256 MiB cache clear before each call, 25 ms warm-up and 100 ms timed,
        # no rest (too short for NVML's steady second: not in power.txt)
        step "protocol round $rep: triton.testing.do_bench's at $H_SHAPES"
        saved_bench=("${BENCH_PROTOCOL[@]}") saved_peers=("${PEERS_PROTOCOL[@]}")
        BENCH_PROTOCOL=(--warmup-ms 25) PEERS_PROTOCOL=()
        bench --causal 0 --precision int8-fp8,bf16 --do-bench --min-ms 100 --warmup 1 --shapes "$H_SHAPES" || status=1
        peers --do-bench --shapes "$H_SHAPES" --causal 0 --dtype bf16 --backends cudnn,flash || status=1
        BENCH_PROTOCOL=("${saved_bench[@]}") PEERS_PROTOCOL=("${saved_peers[@]}")
    done
    power_report
elif [[ "$MODE" == autotune-all ]]; then
    step "sagejit tune: int8-fp8 and bf16 on N 1K/4K/16K, D 64/128, causal or not (written case by case)"
    timeout "${TUNE_LIMIT:-300}" "$JAVA" $JAVA_OPTS -cp "$CP" dev.sagejit.cli.Main tune --run "$RUN" --commit "$COMMIT" \
        --min-ms 100 --precision int8-fp8,bf16 --causal both --json "$RESULTS" --csv "$EXTRA/tune-all.csv" \
        --shapes 4x32x4096x128,4x32x4096x64,4x32x16384x128,4x32x16384x64,4x32x1024x128,4x32x1024x64 \
        | tee "$EXTRA/tune-all.txt" || status=1
elif [[ "$MODE" == tune-modes ]]; then
    # Every GPU of the host takes candidates (sagejit tune --gpus), one worker each.
    GPUS="$(all_gpus)"
    run_tune() { timeout "$1" "$JAVA" $JAVA_OPTS -cp "$CP" dev.sagejit.cli.Main tune --run "$RUN" --commit "$COMMIT" \
        --min-ms 100 --gpus "$GPUS" --json "$RESULTS" "${@:2}"; }
    step "sagejit tune --gpus $GPUS: int8-fp8 at N 4096, every candidate (co-resident BLOCK_M 64 blocks included)"
    start=$SECONDS
    run_tune 240 --precision int8-fp8 --causal both --force --shapes 4x32x4096x128,4x32x4096x64 \
        --csv "$EXTRA/tune-int8.csv" | tee "$EXTRA/tune-modes.txt" || status=1
    echo "tune wall time: $((SECONDS - start)) s" | tee -a "$EXTRA/tune-modes.txt" >&2
    step "sagejit tune --gpus $GPUS: fp16 and int8-fp8-fp16 at N 4096"
    start=$SECONDS
    run_tune 240 --precision fp16,int8-fp8-fp16 --causal both --force --shapes 4x32x4096x128,4x32x4096x64 \
        --csv "$EXTRA/tune-fp16.csv" | tee -a "$EXTRA/tune-modes.txt" || status=1
    echo "tune wall time: $((SECONDS - start)) s" | tee -a "$EXTRA/tune-modes.txt" >&2
    step "sagejit bench --peers auto (bench runs PyTorch SDPA itself) at N 4096 D 128"
    timeout 300 "$JAVA" $JAVA_OPTS -cp "$CP" dev.sagejit.cli.Main bench --peers auto --out "$OUT_DIR/bench-peers.jsonl" \
        --run "$RUN" --commit "$COMMIT" --precision int8-fp8,bf16 --causal both --shapes 4x32x4096x128 --min-ms 150 \
        ${BENCH_PROTOCOL[@]+"${BENCH_PROTOCOL[@]}"} --plot "$EXTRA/bench-peers.png" 2>&1 | tail -12 >&2 || status=1
elif [[ "$MODE" == nvfp4 || "$MODE" == nvfp4-tune ]]; then
    step "NVFP4 (emulated on this GPU) against FP64: Gaussian and peaky bars at D 64/128, N 1K-32K, causal or not"
    nvfp4_run() { timeout 120 "$JAVA" $JAVA_OPTS -cp "$CP" dev.sagejit.cli.Main run --precision nvfp4-emulated \
        --check-rows 128 --results "$RESULTS" --run "$RUN" --commit "$COMMIT" "$@" | grep -E "PASS|FAIL|REPORT" | sed "s|^|$* |" || status=1; }
    for n in 1024 32768; do for d in 64 128; do for f in gaussian peaky; do for causal in "" --causal; do
        nvfp4_run --shape "1x4x${n}x${d}" --inputs "$f" $causal
    done; done; done; done
    for f in gaussian peaky k-channel-offset heavy-tail; do nvfp4_run --shape 1x4x4096x128 --inputs "$f"; done
    [[ "$MODE" != nvfp4-tune ]] || tune_cases "$RESULTS"
elif [[ "$MODE" == bwd ]]; then
    # PRECS (BWD_PRECISIONS): the training modes timed and checked (default bf16; sagebwd,bf16 for SageBwd);
    # BWD_SHAPES replaces the B4 H32 N 1K/4K/16K grid.
    SHAPES="${BWD_SHAPES:-4x32x1024x128,4x32x4096x128,4x32x16384x128,4x32x1024x64,4x32x4096x64,4x32x16384x64}"
    step "training forward, backward and forward+backward of $PRECS (sagejit bench --direction both) and SDPA's"
    bench --direction both --precision "$PRECS" --causal both --min-ms 150 --warmup 3 --shapes "$SHAPES" || status=1
    if [[ -d bundle/base ]]; then  # A/B: each base build (make-bundle.sh BASE_REF), then this one again
        AB_DIRECTION="${AB_DIRECTION:-bwd}"  # bwd, or both (forward, backward, forward+backward)
        while read -r -u 3 commit cp; do
            step "A/B: $PRECS $AB_DIRECTION from the base build $commit (rows carry its commit)"
            BENCH_CP="$cp" BENCH_COMMIT="$commit" bench --direction "$AB_DIRECTION" --precision "$PRECS" --causal both \
                --min-ms 150 --warmup 3 --shapes "$SHAPES" || status=1
        done 3< <(builds | tail -n +2)
        step "$PRECS $AB_DIRECTION from this build again (order effects)"
        bench --direction "$AB_DIRECTION" --precision "$PRECS" --causal both --min-ms 150 --warmup 3 --shapes "$SHAPES" \
            || status=1
    fi
    [[ "${SKIP_PEERS:-0}" == 1 ]] || peers --backward --shapes "$SHAPES" --causal both --dtype bf16 \
        --backends flash,cudnn --warmup 3 --min-iters 5 --min-time 0.3 || status=1
    if [[ "${PROFILE:-0}" == 1 ]]; then  # Nsight Compute on one SageBwd step at B4 H32 N4096 D128
        step "ncu: SageBwd's kernels, B4 H32 N4096 D128 (one training step)"
        mkdir -p "$EXTRA/ncu"
        timeout 300 ncu --section SpeedOfLight --section Occupancy --section WarpStateStats --section LaunchStats \
            --section MemoryWorkloadAnalysis --csv --page details --kernel-name regex:'sagebwd|_prep|_dq' \
            --launch-skip 0 --launch-count 8 "$JAVA" $JAVA_OPTS -cp "$CP" dev.sagejit.cli.Main bench --peers off \
            --out /tmp/ncu-bench.jsonl --direction bwd --precision sagebwd --shapes 4x32x4096x128 --min-ms 1 \
            --warmup 0 --warmup-ms 0 > "$EXTRA/ncu/sagebwd.csv" 2> "$EXTRA/ncu/sagebwd.log" || echo "ncu failed (exit $?)" >&2
        grep -E '"(Duration|Compute \(SM\) Throughput|Memory Throughput|Achieved Occupancy|Registers Per Thread|Warp Cycles Per Issued Instruction)"' \
            "$EXTRA/ncu/sagebwd.csv" | awk -F'","' '{print $5" | "$(NF-2)" | "$(NF-1)" "$NF}' >&2
    fi
    step "backward accuracy against FP64 on identical inputs: SDPA's dQ, dK, dV (torch FP64) and sagejit's (CPU FP64, every row)"
    rm -rf /tmp/sagejit-bwdacc
    peers --no-forward --grad-accuracy --save-inputs /tmp/sagejit-bwdacc --shapes 1x4x1024x128,1x4x1024x64 \
        --inputs gaussian,k-channel-offset --causal both --dtype bf16 --backends flash,cudnn || status=1
    for d in /tmp/sagejit-bwdacc/*/; do
        read -r family dtype < <(python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print(m['family'], m['dtype'])" "$d/meta.json")
        for prec in ${PRECS//,/ }; do
            [[ "$prec" == bf16 || "$prec" == fp16 ]] && prec="$dtype"
            for causal in "" --causal; do
                timeout 120 "$JAVA" $JAVA_OPTS -cp "$CP" dev.sagejit.cli.Main run --backward --q "$d/q.npy" --k "$d/k.npy" \
                    --v "$d/v.npy" --do "$d/do.npy" --precision "$prec" $causal --results "$RESULTS" --run "$RUN" \
                    --commit "$COMMIT" --label "$family" | grep -E "PASS|FAIL|REPORT" \
                    | sed "s|^|$(basename "$d") ${causal:-full} $prec |" || status=1
            done
        done
    done
elif [[ "$MODE" == tune ]]; then
    step "tile sweep"
    bench --tiles all --causal both --precision bf16 --min-ms 150 --shapes 4x32x4096x128,4x32x4096x64 || status=1
    step "peers"
    peers --shapes 4x32x4096x128,4x32x4096x64 --causal both --backends flash,cudnn || status=1
else
    SHAPES="4x32x1024x128 4x32x4096x128 4x32x16384x128 4x32x1024x64 4x32x4096x64 4x32x16384x64"
    step "sagejit forward, default tiles"
    bench --tiles default --causal both --precision bf16,fp16 --shapes "$(tr ' ' ',' <<<"$SHAPES")" || status=1
    step "peers"
    peers --shapes "$(tr ' ' ',' <<<"$SHAPES")" --causal both --dtype bf16 --backends flash,cudnn,efficient || status=1
    peers --shapes "$(tr ' ' ',' <<<"$SHAPES")" --causal both --dtype fp16 --backends flash,cudnn || status=1
    step "accuracy against FP64 on identical inputs: SDPA (torch FP64 reference) and sagejit (CPU FP64)"
    rm -rf /tmp/sagejit-acc
    peers --no-forward --accuracy --save-inputs /tmp/sagejit-acc --shapes 1x4x2048x128,1x4x2048x64 \
        --inputs gaussian,k-channel-offset,heavy-tail,peaky --causal both --dtype bf16,fp16 \
        --backends flash,cudnn || status=1
    for d in /tmp/sagejit-acc/*/; do
        read -r family dtype < <(python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print(m['family'], m['dtype'])" "$d/meta.json")
        for causal in "" --causal; do
            "$JAVA" $JAVA_OPTS -cp "$CP" dev.sagejit.cli.Main run --commit "$COMMIT" --q "$d/q.npy" --k "$d/k.npy" --v "$d/v.npy" \
                --precision "$dtype" $causal --check-rows 0 --results "$RESULTS" --run "$RUN" --label "$family" \
                | grep -E "PASS|FAIL" | sed "s|^|$(basename "$d") ${causal:-full} |" || status=1
        done
    done
fi

step "plots and summary"
python3 benchmarks/plot.py "$RESULTS" --out "$OUT_DIR/fwd_tflops.png" || status=1
python3 benchmarks/summarize.py "$RESULTS" --accuracy > "$OUT_DIR/summary.md" || status=1
cat "$OUT_DIR/summary.md"
tar -czf "$OUT_DIR/extras.tar.gz" -C "$OUT_DIR" extras && rm -rf "$EXTRA"
exit $status
