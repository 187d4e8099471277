#!/usr/bin/env python3
"""Measure PyTorch SDPA backends (the peers sagejit is compared against) on a CUDA GPU.

Writes one JSON Lines record per measurement in the format of /work/shared/RESULTS.md
(benchmarks/results/*.jsonl). Timing uses CUDA events around every timed call, after warm-up,
rotating among several distinct input sets whose total size exceeds the 60 MB L2 (falling back to
writing a 256 MB buffer between calls when rotation cannot exceed it).

torch is imported lazily, so this module (and `--selftest`) works on a machine without torch.
"""

import argparse
import datetime
import json
import math
import os
import subprocess
import sys
import time

L2_BYTES = 60 * 1024 * 1024
FLUSH_BYTES = 256 * 1024 * 1024
MAX_SETS = 64
MAX_ROTATION_BYTES = 16 * 1024 ** 3
DEVICE = "cuda"  # the tests set "cpu" to run the whole flow without a GPU

BACKENDS = {
    "flash": ("FLASH_ATTENTION", "torch-sdpa-flash"),
    "cudnn": ("CUDNN_ATTENTION", "torch-sdpa-cudnn"),
    "efficient": ("EFFICIENT_ATTENTION", "torch-sdpa-efficient"),
    "math": ("MATH", "torch-sdpa-math"),
}
DTYPES = ("bf16", "fp16")
FAMILIES = ("gaussian", "k-channel-offset", "heavy-tail", "peaky")
DIRECTION_FACTOR = {"fwd": 1.0, "bwd": 2.5, "fwdbwd": 3.5}
GRAD_TENSORS = ("dQ", "dK", "dV")


# ----------------------------------------------------------------------------------------------
# Pure helpers (no torch)
# ----------------------------------------------------------------------------------------------

def parse_shape(text):
    """'BxHxNxD' or 'BxHqxHkvxNqxNkxD' -> dict(B, H, Hkv, Nq, Nk, D)."""
    parts = text.strip().lower().split("x")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        raise ValueError("shape %r: expected integers separated by 'x'" % text)
    if len(nums) == 4:
        b, h, n, d = nums
        shape = dict(B=b, H=h, Hkv=h, Nq=n, Nk=n, D=d)
    elif len(nums) == 6:
        b, h, hkv, nq, nk, d = nums
        shape = dict(B=b, H=h, Hkv=hkv, Nq=nq, Nk=nk, D=d)
    else:
        raise ValueError("shape %r: expected BxHxNxD or BxHqxHkvxNqxNkxD" % text)
    if any(v <= 0 for v in shape.values()):
        raise ValueError("shape %r: every dimension must be positive" % text)
    if shape["H"] % shape["Hkv"] != 0:
        raise ValueError("shape %r: Hq (%d) must be a multiple of Hkv (%d)"
                         % (text, shape["H"], shape["Hkv"]))
    return shape


def parse_shapes(items):
    """Accepts a list of strings, each possibly comma separated."""
    shapes = []
    for item in items:
        for tok in item.split(","):
            if tok.strip():
                shapes.append(parse_shape(tok))
    if not shapes:
        raise ValueError("no shapes given")
    return shapes


def parse_causal(text):
    text = str(text).strip().lower()
    if text in ("0", "false", "no"):
        return [False]
    if text in ("1", "true", "yes"):
        return [True]
    if text == "both":
        return [False, True]
    raise ValueError("--causal must be 0, 1 or both, not %r" % text)


def parse_list(text, allowed, what):
    vals = [t.strip().lower() for t in text.split(",") if t.strip()]
    for v in vals:
        if v not in allowed:
            raise ValueError("unknown %s %r (known: %s)" % (what, v, ", ".join(allowed)))
    if not vals:
        raise ValueError("empty %s list" % what)
    return vals


def shape_str(s):
    if s["H"] == s["Hkv"] and s["Nq"] == s["Nk"]:
        return "%dx%dx%dx%d" % (s["B"], s["H"], s["Nq"], s["D"])
    return "%dx%dx%dx%dx%dx%d" % (s["B"], s["H"], s["Hkv"], s["Nq"], s["Nk"], s["D"])


def flops(s, causal, direction="fwd"):
    """4*B*H*Nq*Nk*D, x0.5 causal; bwd 2.5x and fwdbwd 3.5x the forward's work."""
    f = 4.0 * s["B"] * s["H"] * s["Nq"] * s["Nk"] * s["D"]
    if causal:
        f *= 0.5
    return f * DIRECTION_FACTOR[direction]


def tops(s, causal, direction, ms):
    """TFLOPS (1e12 operations per second) for a time in milliseconds."""
    if ms is None or ms <= 0:
        return None
    return flops(s, causal, direction) / (ms * 1e-3) / 1e12


def percentile(values, p):
    """Linear-interpolation percentile (numpy's default method), p in [0, 100]."""
    if not values:
        raise ValueError("percentile of nothing")
    xs = sorted(values)
    if len(xs) == 1:
        return float(xs[0])
    pos = (len(xs) - 1) * p / 100.0
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(xs) - 1)
    frac = pos - lo
    return float(xs[lo] + (xs[hi] - xs[lo]) * frac)


def timing_fields(times_ms):
    return dict(median_ms=percentile(times_ms, 50), p20_ms=percentile(times_ms, 20),
                p80_ms=percentile(times_ms, 80))


def rotation_plan(set_bytes, l2_bytes=L2_BYTES, max_sets=MAX_SETS, max_bytes=MAX_ROTATION_BYTES):
    """Number of distinct input sets to rotate among, and whether an L2 flush is still needed.

    Aims at sets whose total is >= 3x L2; at least 2 sets; at most max_sets / max_bytes.
    """
    set_bytes = max(1, int(set_bytes))
    n = int(math.ceil(3.0 * l2_bytes / set_bytes))
    n = max(2, min(n, max_sets))
    while n > 2 and n * set_bytes > max_bytes:
        n -= 1
    flush = n * set_bytes < 2 * l2_bytes
    return n, flush


def iteration_count(est_ms, min_iters, min_time_s, max_iters):
    """>= min_iters timed calls, and enough to fill min_time_s, capped at max_iters."""
    if est_ms is None or est_ms <= 0:
        return max(min_iters, 1)
    n = int(math.ceil(min_time_s * 1e3 / est_ms))
    return max(min_iters, min(n, max_iters))


def base_record(args_run, gpu, commit, impl, mode, direction, s, causal):
    return dict(run=args_run, gpu=gpu, commit=commit, impl=impl, mode=mode, direction=direction,
                scope="kernel", B=s["B"], H=s["H"], Hkv=s["Hkv"], Nq=s["Nq"], Nk=s["Nk"],
                D=s["D"], causal=bool(causal), layout="BHSD", config="default")


class JsonlWriter:
    """Appends one JSON object per line; flushes after every line so partial runs survive."""

    def __init__(self, path):
        self.path = path
        if path:
            d = os.path.dirname(os.path.abspath(path))
            os.makedirs(d, exist_ok=True)
            self.fh = open(path, "a", encoding="utf-8")
        else:
            self.fh = sys.stdout
        self.records = []

    def write(self, rec):
        # JSON has no NaN/Infinity: a non-finite number is written as null
        rec = dict((k, None if isinstance(v, float) and not math.isfinite(v) else v)
                   for k, v in rec.items())
        self.records.append(rec)
        self.fh.write(json.dumps(rec, sort_keys=False, allow_nan=False) + "\n")
        self.fh.flush()

    def close(self):
        if self.fh is not sys.stdout:
            self.fh.close()


def human_table(records):
    """Short text table (impl, shape, causal, direction, ms, TFLOPS) of timing/error records."""
    rows = [("impl", "mode", "shape", "causal", "dir", "median_ms", "TFLOPS")]
    for r in records:
        if "metric" in r or "reference" in r:  # accuracy lines (and their errors)
            continue
        s = dict((k, r[k]) for k in ("B", "H", "Hkv", "Nq", "Nk", "D"))
        if r.get("median_ms") is not None:
            ms = "%.4f" % r["median_ms"]
            tf = "%.1f" % r["tops"] if r.get("tops") is not None else "-"
        else:
            ms = "skipped" if "skipped" in r else "ERROR"
            tf = "-"
        rows.append((r["impl"], r["mode"], shape_str(s), "1" if r["causal"] else "0",
                     r["direction"], ms, tf))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def accuracy_table(records):
    rows = [("impl", "shape", "causal", "inputs", "tensor", "cosine", "rel_l1", "rel_l2", "rmse")]
    acc = {}
    order = []
    for r in records:
        if "metric" not in r and not ("reference" in r and "error" in r):
            continue
        s = dict((k, r[k]) for k in ("B", "H", "Hkv", "Nq", "Nk", "D"))
        key = (r["impl"], shape_str(s), "1" if r["causal"] else "0", r["inputs"], r.get("tensor", "O"))
        if key not in acc:
            acc[key] = {}
            order.append(key)
        if "metric" in r:
            acc[key][r["metric"]] = r["value"]
    if not order:
        return ""
    for key in order:
        m = acc[key]
        if not m:
            rows.append(key + ("ERROR", "-", "-", "-"))
            continue
        rows.append(key + tuple(("%.6g" % m[k]) if m.get(k) is not None else "-"
                                for k in ("cosine", "rel_l1", "rel_l2", "rmse")))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows)


def git_commit():
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, cwd=os.path.dirname(os.path.abspath(__file__)))
        if out.returncode == 0:
            return out.stdout.strip()
    except Exception:
        pass
    return "unknown"


def default_run_id():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_parser():
    p = argparse.ArgumentParser(
        description="Time PyTorch SDPA backends and write JSON Lines (RESULTS.md format).")
    p.add_argument("--shapes", nargs="+", required=False,
                   default=["4x32x4096x128"],
                   help="BxHxNxD or BxHqxHkvxNqxNkxD, space or comma separated "
                        "(default 4x32x4096x128)")
    p.add_argument("--causal", default="both", help="0, 1 or both (default both)")
    p.add_argument("--dtype", default="bf16", help="bf16 or fp16 (comma list allowed)")
    p.add_argument("--backends", default="flash,cudnn,efficient",
                   help="comma list of flash,cudnn,efficient,math (default flash,cudnn,efficient)")
    p.add_argument("--run", default=None, help="run id (default: UTC ISO timestamp)")
    p.add_argument("--commit", default=None, help="project commit measured (default: git HEAD)")
    p.add_argument("--out", default=None, help="JSONL file to append to (default: stdout)")
    p.add_argument("--backward", action="store_true",
                   help="also time bwd alone and fwd+bwd (directions bwd, fwdbwd)")
    p.add_argument("--no-forward", action="store_true",
                   help="skip the forward timing (only with --backward / --accuracy / --grad-accuracy)")
    p.add_argument("--accuracy", action="store_true",
                   help="also write accuracy lines of O against an FP64 torch reference")
    p.add_argument("--grad-accuracy", action="store_true",
                   help="also write accuracy lines of each backend's dQ, dK, dV (direction bwd) against "
                        "FP64 torch gradients, for a Gaussian dO (with --save-inputs: do.npy)")
    p.add_argument("--inputs", default=",".join(FAMILIES),
                   help="input families for --accuracy/--save-inputs (default: all four)")
    p.add_argument("--save-inputs", default=None, metavar="DIR",
                   help="write q/k/v.npy (float32 of the rounded inputs, BHSD), ref_o.npy and, with "
                        "--grad-accuracy, do.npy per shape and input family under DIR")
    p.add_argument("--seed", type=int, default=0,
                   help="random seed (default 0); accuracy rows of another seed say inputs FAMILY-seedN")
    p.add_argument("--warmup", type=int, default=10, help="warm-up calls (default 10)")
    p.add_argument("--warmup-time", type=float, default=0.3,
                   help="then warm-up calls for this many seconds, so each case is timed at the GPU's steady "
                        "clock, which dips for a few hundred ms after idle (default 0.3; sagejit bench "
                        "--warmup-ms gives its own cases the same)")
    p.add_argument("--cooldown-time", type=float, default=0.0,
                   help="idle seconds before each case, so every case starts from a rested GPU (under sustained "
                        "load the H200 reaches its power cap and lowers its clock) (default 0; sagejit bench "
                        "--cooldown-ms gives its own cases the same)")
    p.add_argument("--sleep-every", type=int, default=0,
                   help="spin the GPU ~100 us (torch.cuda._sleep) before every Nth timed call so the calls after it "
                        "are queued before their start events; 0: only before the first (default 0: the calls then "
                        "run back to back, as sagejit bench times its own; 1 idles the GPU before every call, which "
                        "under the H200's power cap raises the clock for the calls: sagejit bench --gap-us gives its "
                        "own cases the same gaps)")
    p.add_argument("--do-bench", action="store_true",
                   help="time forward calls with triton.testing.do_bench itself (25 ms warm-up, 100 ms of calls, each "
                        "after a 256 MiB cache clear; median): the protocol of shared/DEVICE.md's peer figures "
                        "(sagejit bench --do-bench mirrors it)")
    p.add_argument("--min-iters", type=int, default=30, help="minimum timed calls (default 30)")
    p.add_argument("--min-time", type=float, default=1.0,
                   help="aim for this many seconds of timed calls (default 1.0)")
    p.add_argument("--max-iters", type=int, default=2000, help="cap on timed calls (default 2000)")
    p.add_argument("--selftest", action="store_true",
                   help="check the non-GPU logic (no torch needed) and exit")
    return p


def parse_args(argv=None):
    p = build_parser()
    a = p.parse_args(argv)
    if a.selftest:
        return a
    try:
        a.shape_list = parse_shapes(a.shapes)
        a.causal_list = parse_causal(a.causal)
        a.dtype_list = parse_list(a.dtype, DTYPES, "dtype")
        a.backend_list = parse_list(a.backends, tuple(BACKENDS), "backend")
        a.family_list = parse_list(a.inputs, FAMILIES, "input family")
    except ValueError as e:
        p.error(str(e))
    if a.min_iters < 1 or a.max_iters < a.min_iters:
        p.error("need 1 <= --min-iters <= --max-iters")
    if a.sleep_every < 0:
        p.error("need --sleep-every >= 0")
    if a.do_bench and a.backward:
        p.error("--do-bench times forward calls only")
    if a.run is None:
        a.run = default_run_id()
    if a.commit is None:
        a.commit = git_commit()
    return a


# ----------------------------------------------------------------------------------------------
# torch side
# ----------------------------------------------------------------------------------------------

def torch_dtype(torch, name):
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[name]


def gen_inputs(torch, family, s, seed, device=None):
    """Q, K, V in float32, BHSD, for one input family (definitions in RESULTS.md)."""
    B, H, Hkv, Nq, Nk, D = s["B"], s["H"], s["Hkv"], s["Nq"], s["Nk"], s["D"]
    device = device or DEVICE
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    cpu = torch.Generator()
    cpu.manual_seed(seed + 7919)

    def randn(*shape):
        return torch.randn(*shape, generator=g, device=device, dtype=torch.float32)

    def student_t3(*shape):
        z = randn(*shape)
        chi2 = randn(*shape).square_()
        chi2 += randn(*shape).square_()
        chi2 += randn(*shape).square_()
        return z / torch.sqrt(chi2 / 3.0)

    if family == "gaussian":
        return randn(B, H, Nq, D), randn(B, Hkv, Nk, D), randn(B, Hkv, Nk, D)
    if family == "k-channel-offset":
        q, k, v = randn(B, H, Nq, D), randn(B, Hkv, Nk, D), randn(B, Hkv, Nk, D)
        n_off = max(1, int(round(0.12 * D)))
        offs = torch.zeros(Hkv, D, dtype=torch.float32)
        for h in range(Hkv):
            chans = torch.randperm(D, generator=cpu)[:n_off]
            signs = torch.randint(0, 2, (n_off,), generator=cpu).float() * 2.0 - 1.0
            offs[h, chans] = 20.0 * signs
        k += offs.to(device)[None, :, None, :]
        return q, k, v
    if family == "heavy-tail":
        return student_t3(B, H, Nq, D), student_t3(B, Hkv, Nk, D), student_t3(B, Hkv, Nk, D)
    if family == "peaky":
        k, v = randn(B, Hkv, Nk, D), randn(B, Hkv, Nk, D)
        grp = H // Hkv
        idx = torch.randint(0, Nk, (B, H, Nq), generator=g, device=device)
        q = 0.5 * randn(B, H, Nq, D)
        for h in range(H):
            kh = k[:, h // grp]                                   # B, Nk, D
            sel = torch.gather(kh, 1, idx[:, h, :, None].expand(B, Nq, D))
            q[:, h] += 2.0 * sel
        return q, k, v
    raise ValueError("unknown input family %r" % family)


def softmax_blocks(torch, q, k, v, causal, scale, chunk_elems=1 << 27):
    """Yields (b, h, hkv, s0, s1, P, K_h, V_h): P = softmax(Q K^T * scale) of query rows s0:s1 of
    head h in float64, with its kv head's K and V in float64; blocks of at most chunk_elems scores."""
    B, H, Nq, D = q.shape
    Hkv, Nk = k.shape[1], k.shape[2]
    grp = H // Hkv
    rows = max(1, min(Nq, chunk_elems // max(1, Nk)))
    cols = torch.arange(Nk, device=q.device)[None, :]
    for b in range(B):
        for hkv in range(Hkv):
            kh = k[b, hkv].to(torch.float64)
            vh = v[b, hkv].to(torch.float64)
            for h in range(hkv * grp, (hkv + 1) * grp):
                for s0 in range(0, Nq, rows):
                    s1 = min(Nq, s0 + rows)
                    sc = (q[b, h, s0:s1].to(torch.float64) @ kh.T) * scale
                    if causal:  # top-left aligned, as SDPA's is_causal (used only with Nq == Nk)
                        r = torch.arange(s0, s1, device=q.device)[:, None]
                        sc.masked_fill_(cols > r, float("-inf"))
                    yield b, h, hkv, s0, s1, torch.softmax(sc, dim=-1), kh, vh


def reference_fp64(torch, q, k, v, causal, scale, chunk_elems=1 << 27):
    """softmax(Q K^T * scale) V in float64, one head and a block of query rows at a time."""
    B, H, Nq, _ = q.shape
    out = torch.empty(B, H, Nq, v.shape[3], dtype=torch.float64, device=q.device)
    for b, h, _, s0, s1, p, _, vh in softmax_blocks(torch, q, k, v, causal, scale, chunk_elems):
        out[b, h, s0:s1] = p @ vh
    return out


def reference_grads_fp64(torch, q, k, v, do, causal, scale, chunk_elems=1 << 27):
    """dQ, dK, dV of softmax(Q K^T * scale) V for the upstream gradient dO, in float64 (dK and dV
    sum over the query heads of a kv head), a block of query rows at a time:
    dV += P^T dO, dS = P * (dO V^T - rowsum(dO * O)), dQ = dS K * scale, dK += dS^T Q * scale."""
    f64 = torch.float64
    dq = torch.zeros(q.shape, dtype=f64, device=q.device)
    dk = torch.zeros(k.shape, dtype=f64, device=q.device)
    dv = torch.zeros(v.shape, dtype=f64, device=q.device)
    for b, h, hkv, s0, s1, p, kh, vh in softmax_blocks(torch, q, k, v, causal, scale, chunk_elems):
        qs = q[b, h, s0:s1].to(f64)
        g = do[b, h, s0:s1].to(f64)
        delta = (g * (p @ vh)).sum(dim=-1, keepdim=True)
        ds = p * (g @ vh.T - delta)
        dv[b, hkv] += p.T @ g
        dq[b, h, s0:s1] = (ds @ kh) * scale
        dk[b, hkv] += (ds.T @ qs) * scale
    return dq, dk, dv


def error_metrics(torch, o, ref):
    x = o.to(torch.float64).flatten()
    r = ref.to(torch.float64).flatten()
    d = x - r
    rn = torch.linalg.vector_norm(r)
    return dict(
        cosine=float(torch.dot(x, r) / (torch.linalg.vector_norm(x) * rn)),
        rel_l1=float(d.abs().sum() / r.abs().sum()),
        rmse=float(torch.sqrt(torch.mean(d * d))),
        rel_l2=float(torch.linalg.vector_norm(d) / rn),
        max_abs=float(d.abs().max()),
    )


class Sdpa:
    """One SDPA backend bound to a problem; resolves how GQA is run."""

    def __init__(self, torch, backend, s, causal):
        from torch.nn.attention import SDPBackend, sdpa_kernel
        self.torch = torch
        self.F = torch.nn.functional
        self.backend = getattr(SDPBackend, BACKENDS[backend][0])
        self.sdpa_kernel = sdpa_kernel
        self.causal = causal
        self.group = s["H"] // s["Hkv"]
        self.gqa = None  # None (MHA), "enable_gqa" or "repeat_interleave"

    def ctx(self):
        return self.sdpa_kernel([self.backend])

    def resolve_gqa(self, q, k, v):
        """Call inside ctx(). Tries enable_gqa=True, falls back to repeat_interleave."""
        if self.group == 1:
            return
        try:
            self.F.scaled_dot_product_attention(q, k, v, is_causal=self.causal, enable_gqa=True)
            self.torch.cuda.synchronize()
            self.gqa = "enable_gqa"
        except (TypeError, RuntimeError) as e:
            sys.stderr.write("  enable_gqa not usable (%s); falling back to repeat_interleave\n"
                             % str(e).splitlines()[0][:200])
            self.gqa = "repeat_interleave"

    def prep_kv(self, k, v):
        """K/V as the call will see them (expanded once, outside timing, for the fallback)."""
        if self.gqa == "repeat_interleave":
            return (k.repeat_interleave(self.group, dim=1).contiguous(),
                    v.repeat_interleave(self.group, dim=1).contiguous())
        return k, v

    def __call__(self, q, k, v):
        if self.gqa == "enable_gqa":
            return self.F.scaled_dot_product_attention(q, k, v, is_causal=self.causal,
                                                       enable_gqa=True)
        return self.F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)


def sdpa_grads(torch, sdpa, q, k, v, do):
    """SDPA's dQ, dK, dV (in the inputs' dtype) for the upstream gradient dO; call inside sdpa.ctx()
    after sdpa.resolve_gqa (a repeat_interleave fallback sums dK, dV over each group)."""
    qg, kg, vg = [t.detach().requires_grad_(True) for t in (q, k, v)]
    kk, vv = sdpa.prep_kv(kg, vg)
    o = sdpa(qg, kk, vv)
    return torch.autograd.grad(o, (qg, kg, vg), do)


def _sleep_ahead(torch):
    """Keep the GPU busy ~100 us so the next calls are queued before the start event fires."""
    try:
        torch.cuda._sleep(200000)
    except Exception:
        pass


WARM_BATCH = 4  # calls queued between the time checks of the timed warm-up


def sleeps_before(i, sleep_every):
    """Whether timed call i gets a sleep-ahead: the first always, then every sleep_every-th (0: none)."""
    return i == 0 or (sleep_every > 0 and i % sleep_every == 0)


def protocol_label(a):
    """The results line's protocol field (shared/RESULTS.md; sagejit bench writes the same labels)."""
    if a.do_bench:
        return "do_bench"
    return {0: "back-to-back", 1: "gap"}.get(a.sleep_every, "sleep-every-%d" % a.sleep_every)


DO_BENCH_WARMUP_MS = 25.0  # triton.testing.do_bench's defaults, given explicitly so the results line states them
DO_BENCH_REP_MS = 100.0
DO_BENCH_FLUSH_MIB = 256.0  # the cache do_bench clears before each call (not a parameter of it)


def measure_do_bench(timed):
    """[median, p20, p80] ms of timed(0, None) by triton.testing.do_bench."""
    import triton.testing
    med, p20, p80 = triton.testing.do_bench(lambda: timed(0, None), warmup=DO_BENCH_WARMUP_MS, rep=DO_BENCH_REP_MS,
                                            quantiles=[0.5, 0.2, 0.8])
    return med, p20, p80


def measure(torch, timed, n_sets, flush_buf, a, pre=None):
    """Times timed(i, state) with CUDA events; pre(i) runs untimed before. Returns list of ms."""
    def one(i, ev=None, sleep=False):
        st = pre(i % n_sets) if pre is not None else None
        if flush_buf is not None:
            flush_buf.zero_()
        if ev is not None:
            if sleep:
                _sleep_ahead(torch)
            ev[0].record()
        timed(i % n_sets, st)
        if ev is not None:
            ev[1].record()

    torch.cuda.synchronize()
    time.sleep(a.cooldown_time)
    for i in range(a.warmup):
        one(i)
    torch.cuda.synchronize()
    warm_end = time.perf_counter() + a.warmup_time
    i = a.warmup
    while time.perf_counter() < warm_end:
        for _ in range(WARM_BATCH):
            one(i)
            i += 1
        torch.cuda.synchronize()
    n_est = 5
    evs = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
           for _ in range(n_est)]
    for i in range(n_est):
        one(i, evs[i], sleeps_before(i, a.sleep_every))
    torch.cuda.synchronize()
    est = percentile([e0.elapsed_time(e1) for e0, e1 in evs], 50)
    iters = iteration_count(est, a.min_iters, a.min_time, a.max_iters)
    evs = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
           for _ in range(iters)]
    for i in range(iters):
        one(i, evs[i], sleeps_before(i, a.sleep_every))
    torch.cuda.synchronize()
    return [e0.elapsed_time(e1) for e0, e1 in evs]


def run_one(torch, a, w, gpu, s, causal, dt_name, backend, flush_buf_holder):
    """All timing records (fwd, and bwd/fwdbwd with --backward) for one backend/shape/causal."""
    impl = BACKENDS[backend][1]
    dtype = torch_dtype(torch, dt_name)
    directions = ([] if a.no_forward else ["fwd"]) + (["bwd", "fwdbwd"] if a.backward else [])
    if not directions:
        return
    need_grad = a.backward
    elt = torch.tensor([], dtype=dtype).element_size()
    B, H, Hkv, Nq, Nk, D = s["B"], s["H"], s["Hkv"], s["Nq"], s["Nk"], s["D"]
    set_bytes = elt * (B * H * Nq * D * (2 if not need_grad else 3) + 2 * B * Hkv * Nk * D)
    n_sets, flush = rotation_plan(set_bytes)
    sets = None
    written = set()
    try:
        sdpa = Sdpa(torch, backend, s, causal)
        g = torch.Generator(device=DEVICE)
        g.manual_seed(a.seed)
        sets = []
        for _ in range(n_sets):
            q = torch.randn(B, H, Nq, D, generator=g, device=DEVICE, dtype=torch.float32).to(dtype)
            k = torch.randn(B, Hkv, Nk, D, generator=g, device=DEVICE, dtype=torch.float32).to(dtype)
            v = torch.randn(B, Hkv, Nk, D, generator=g, device=DEVICE, dtype=torch.float32).to(dtype)
            sets.append([q, k, v, None])
        with sdpa.ctx():
            sdpa.resolve_gqa(sets[0][0], sets[0][1], sets[0][2])
            for st in sets:
                st[1], st[2] = sdpa.prep_kv(st[1], st[2])
                if need_grad:
                    for j in range(3):
                        st[j].requires_grad_(True)
                    st[3] = torch.randn(B, H, Nq, D, generator=g, device=DEVICE,
                                        dtype=torch.float32).to(dtype)
            if flush and flush_buf_holder[0] is None:
                flush_buf_holder[0] = torch.empty(FLUSH_BYTES, dtype=torch.uint8, device=DEVICE)
            fb = flush_buf_holder[0] if flush else None
            for direction in directions:
                rec = base_record(a.run, gpu, a.commit, impl, dt_name, direction, s, causal)
                rec["torch"] = torch.__version__
                if sdpa.gqa:
                    rec["gqa"] = sdpa.gqa
                try:
                    if direction == "fwd":
                        def timed(i, _st):
                            with torch.no_grad():
                                sdpa(sets[i][0], sets[i][1], sets[i][2])
                        if a.do_bench:
                            time.sleep(a.cooldown_time)
                            times = measure_do_bench(timed)
                        else:
                            times = measure(torch, timed, n_sets, fb, a)
                    elif direction == "bwd":
                        def pre(i):
                            return sdpa(sets[i][0], sets[i][1], sets[i][2])

                        def timed(i, out):
                            torch.autograd.grad(out, (sets[i][0], sets[i][1], sets[i][2]),
                                                sets[i][3])
                        times = measure(torch, timed, n_sets, fb, a, pre=pre)
                    else:
                        def timed(i, _st):
                            out = sdpa(sets[i][0], sets[i][1], sets[i][2])
                            torch.autograd.grad(out, (sets[i][0], sets[i][1], sets[i][2]),
                                                sets[i][3])
                        times = measure(torch, timed, n_sets, fb, a)
                    if a.do_bench:  # do_bench's own median and quantiles; its warm-up and repetition
                        rec.update(median_ms=times[0], p20_ms=times[1], p80_ms=times[2])
                        rec["tops"] = tops(s, causal, direction, rec["median_ms"])
                        rec.update(warmup_ms=DO_BENCH_WARMUP_MS, rep_ms=DO_BENCH_REP_MS, flush_mib=DO_BENCH_FLUSH_MIB)
                    else:
                        rec.update(timing_fields(times))
                        rec["tops"] = tops(s, causal, direction, rec["median_ms"])
                        rec["iters"] = len(times)
                    if a.warmup_time > 0 and not a.do_bench:
                        rec["warmup_ms"] = a.warmup_time * 1e3
                    if a.cooldown_time > 0:
                        rec["cooldown_ms"] = a.cooldown_time * 1e3
                    rec["protocol"] = protocol_label(a)
                    if not a.do_bench:
                        rec["sleep_every"] = a.sleep_every
                    rec["rotation_sets"] = n_sets
                    rec["l2_flush"] = bool(flush)
                except Exception as e:  # noqa: BLE001 - a failing backend must not stop the run
                    rec["error"] = "%s: %s" % (type(e).__name__, str(e).strip()[:500])
                    try:
                        torch.cuda.synchronize()
                    except Exception:  # noqa: BLE001 - a sticky CUDA error; keep going
                        pass
                w.write(rec)
                written.add(direction)
    except Exception as e:  # noqa: BLE001 - setup failed (e.g. out of memory)
        for direction in directions:
            if direction in written:
                continue
            rec = base_record(a.run, gpu, a.commit, impl, dt_name, direction, s, causal)
            rec["error"] = "%s: %s" % (type(e).__name__, str(e).strip()[:500])
            w.write(rec)
    finally:
        sets = None
        torch.cuda.empty_cache()


ACCURACY_METRICS = ("cosine", "rel_l1", "rmse", "rel_l2", "max_abs")


def write_metrics(w, base, m):
    """One accuracy line per metric of m (error_metrics' dict) on top of base."""
    for name in ACCURACY_METRICS:
        rec = dict(base)
        rec.update(metric=name, value=m[name])
        w.write(rec)


def write_error(w, base, e):
    rec = dict(base)
    rec["error"] = "%s: %s" % (type(e).__name__, str(e).strip()[:500])
    w.write(rec)


def grad_seed(inputs_seed):
    """Seed of dO for inputs drawn with inputs_seed (meta.json's do_seed)."""
    return inputs_seed + 1


def gen_grad(torch, s, seed, device=None):
    """The upstream gradient dO of a backward accuracy check: float32 N(0, 1), shaped like Q (BHSD)."""
    device = device or DEVICE
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return torch.randn(s["B"], s["H"], s["Nq"], s["D"], generator=g, device=device,
                       dtype=torch.float32)


def run_accuracy(torch, a, w, gpu, s, causals, dt_name, backends):
    """Accuracy lines of O (--accuracy) and of dQ, dK, dV (--grad-accuracy) for every input family,
    backend and causal setting of one shape; --save-inputs writes what sagejit run needs."""
    dtype = torch_dtype(torch, dt_name)
    for fam_i, family in enumerate(a.family_list):
        seed = a.seed + 1000 * (fam_i + 1)
        try:
            q32, k32, v32 = gen_inputs(torch, family, s, seed)
            q, k, v = q32.to(dtype), k32.to(dtype), v32.to(dtype)
            do = gen_grad(torch, s, grad_seed(seed)).to(dtype) if a.grad_accuracy else None
            del q32, k32, v32
        except Exception as e:  # noqa: BLE001
            sys.stderr.write("input family %s for %s failed: %s\n" % (family, shape_str(s), e))
            continue
        save_dir = None
        if a.save_inputs:
            save_dir = os.path.join(a.save_inputs, "%s-%s-%s" % (shape_str(s), family, dt_name))
            try:
                save_npy(torch, save_dir, q, k, v, s, family, dt_name, seed, do=do, inputs=inputs_label(a, family))
            except Exception as e:  # noqa: BLE001
                sys.stderr.write("--save-inputs failed for %s: %s\n" % (save_dir, e))
                save_dir = None
        for causal in causals:
            if causal and s["Nq"] != s["Nk"]:
                continue
            if a.accuracy or save_dir:
                o_accuracy(torch, a, w, gpu, s, causal, dt_name, backends, family, (q, k, v), save_dir)
            if a.grad_accuracy:
                grad_accuracy(torch, a, w, gpu, s, causal, dt_name, backends, family, (q, k, v), do)
            torch.cuda.empty_cache()
        del q, k, v, do
        torch.cuda.empty_cache()


def inputs_label(a, family):
    """The rows' `inputs` field: the family, with -seedN when --seed draws another sample of it."""
    return family if a.seed == 0 else "%s-seed%d" % (family, a.seed)


def o_accuracy(torch, a, w, gpu, s, causal, dt_name, backends, family, qkv, save_dir):
    """O of each backend against the FP64 torch reference (with --accuracy); saves ref_o*.npy."""
    q, k, v = qkv
    try:
        ref = reference_fp64(torch, q, k, v, causal, 1.0 / math.sqrt(s["D"]))
    except Exception as e:  # noqa: BLE001
        sys.stderr.write("fp64 reference failed for %s: %s\n" % (shape_str(s), e))
        return
    if save_dir:
        try:
            import numpy as np
            np.save(os.path.join(save_dir, "ref_o_causal.npy" if causal else "ref_o.npy"),
                    ref.float().cpu().numpy())
        except Exception as e:  # noqa: BLE001
            sys.stderr.write("--save-inputs failed for %s: %s\n" % (save_dir, e))
    if not a.accuracy:
        return
    for backend in backends:
        base = base_record(a.run, gpu, a.commit, BACKENDS[backend][1], dt_name, "fwd", s, causal)
        base.update(reference="fp64-torch", tensor="O", inputs=inputs_label(a, family))
        try:
            sdpa = Sdpa(torch, backend, s, causal)
            with sdpa.ctx():
                sdpa.resolve_gqa(q, k, v)
                kk, vv = sdpa.prep_kv(k, v)
                with torch.no_grad():
                    o = sdpa(q, kk, vv)
                torch.cuda.synchronize()
            if sdpa.gqa:
                base["gqa"] = sdpa.gqa
            m = error_metrics(torch, o, ref)
            del o, kk, vv
            write_metrics(w, base, m)
        except Exception as e:  # noqa: BLE001
            write_error(w, base, e)


def grad_accuracy(torch, a, w, gpu, s, causal, dt_name, backends, family, qkv, do):
    """dQ, dK, dV of each backend's backward against FP64 torch gradients (direction bwd)."""
    q, k, v = qkv
    try:
        ref = reference_grads_fp64(torch, q, k, v, do, causal, 1.0 / math.sqrt(s["D"]))
    except Exception as e:  # noqa: BLE001
        sys.stderr.write("fp64 gradients failed for %s: %s\n" % (shape_str(s), e))
        return
    for backend in backends:
        base = base_record(a.run, gpu, a.commit, BACKENDS[backend][1], dt_name, "bwd", s, causal)
        base.update(reference="fp64-torch", inputs=inputs_label(a, family))
        try:
            sdpa = Sdpa(torch, backend, s, causal)
            with sdpa.ctx():
                sdpa.resolve_gqa(q, k, v)
                grads = sdpa_grads(torch, sdpa, q, k, v, do)
                torch.cuda.synchronize()
            if sdpa.gqa:
                base["gqa"] = sdpa.gqa
            ms = [error_metrics(torch, g, r) for g, r in zip(grads, ref)]
            del grads
        except Exception as e:  # noqa: BLE001
            for tensor in GRAD_TENSORS:
                write_error(w, dict(base, tensor=tensor), e)
            continue
        for tensor, m in zip(GRAD_TENSORS, ms):
            write_metrics(w, dict(base, tensor=tensor), m)
    del ref


def save_npy(torch, d, q, k, v, s, family, dt_name, seed, do=None, inputs=None):
    """q/k/v.npy (and do.npy when dO is given) as float32 copies of the rounded tensors, and meta.json
    (`inputs`: the label the accuracy rows of these inputs carry, default the family)."""
    import numpy as np
    os.makedirs(d, exist_ok=True)
    tensors = [("q", q), ("k", k), ("v", v)] + ([("do", do)] if do is not None else [])
    for name, t in tensors:
        np.save(os.path.join(d, name + ".npy"), t.float().cpu().numpy())
    meta = dict(s)
    meta.update(layout="BHSD", family=family, inputs=inputs or family, dtype=dt_name, seed=seed,
                scale=1.0 / math.sqrt(s["D"]),
                note="q/k/v: float32 copies of the %s-rounded inputs; ref_o*.npy: FP64 torch "
                     "reference stored as float32; causal is top-left aligned" % dt_name)
    if do is not None:
        meta.update(do="do.npy", do_seed=grad_seed(seed),
                    do_note="do.npy: float32 copy of the %s-rounded upstream gradient dO, Gaussian, "
                            "shaped like q" % dt_name)
    with open(os.path.join(d, "meta.json"), "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=1)


def main(argv=None):
    a = parse_args(argv)
    if a.selftest:
        return selftest()
    import torch
    if not torch.cuda.is_available():
        sys.stderr.write("peers.py: no CUDA device\n")
        return 2
    gpu = torch.cuda.get_device_name()
    w = JsonlWriter(a.out)
    flush_holder = [None]
    try:
        for s in a.shape_list:
            for dt_name in a.dtype_list:
                for causal in a.causal_list:
                    if causal and s["Nq"] != s["Nk"]:
                        sys.stderr.write("skip causal for %s: SDPA's is_causal is top-left "
                                         "aligned, used only with Nq == Nk\n" % shape_str(s))
                        for backend in a.backend_list:
                            rec = base_record(a.run, gpu, a.commit, BACKENDS[backend][1],
                                              dt_name, "fwd", s, causal)
                            rec["skipped"] = "causal with Nq != Nk (is_causal is top-left aligned)"
                            w.write(rec)
                        continue
                    for backend in a.backend_list:
                        sys.stderr.write("%s %s %s causal=%d\n" % (BACKENDS[backend][1], dt_name,
                                                                    shape_str(s), causal))
                        run_one(torch, a, w, gpu, s, causal, dt_name, backend, flush_holder)
                if a.accuracy or a.save_inputs or a.grad_accuracy:
                    flush_holder[0] = None
                    torch.cuda.empty_cache()
                    run_accuracy(torch, a, w, gpu, s, a.causal_list, dt_name, a.backend_list)
    finally:
        w.close()
    sys.stderr.write("\nrun %s on %s (torch %s)\n" % (a.run, gpu, torch.__version__))
    sys.stderr.write(human_table(w.records) + "\n")
    acc = accuracy_table(w.records)
    if acc:
        sys.stderr.write("\n" + acc + "\n")
    return 0


# ----------------------------------------------------------------------------------------------
# Self-test of the non-GPU logic
# ----------------------------------------------------------------------------------------------

def selftest():
    import tempfile
    s = parse_shape("4x32x4096x128")
    assert s == dict(B=4, H=32, Hkv=32, Nq=4096, Nk=4096, D=128), s
    g = parse_shape("2x32x8x1024x4096x64")
    assert (g["H"], g["Hkv"], g["Nq"], g["Nk"]) == (32, 8, 1024, 4096)
    for bad in ("4x32x4096", "4x32x5x10x10x64", "axbxcxd", "0x1x2x3"):
        try:
            parse_shape(bad)
        except ValueError:
            pass
        else:
            raise AssertionError("accepted " + bad)
    assert len(parse_shapes(["1x2x128x64,1x2x256x64", "2x4x2x64x128x64"])) == 3
    assert parse_causal("both") == [False, True] and parse_causal("0") == [False]
    assert abs(flops(s, False) - 4 * 4 * 32 * 4096 * 4096 * 128) < 1
    assert abs(flops(s, True, "bwd") - 2.5 * 0.5 * flops(s, False)) < 1
    assert abs(flops(s, False, "fwdbwd") - 3.5 * flops(s, False)) < 1
    # 4x32x4096x128 at 1.824 ms is ~603 TFLOPS (DEVICE.md's cuDNN figure)
    t = tops(s, False, "fwd", 1.824)
    assert 600 < t < 605, t
    assert percentile([3, 1, 2], 50) == 2.0 and percentile([1, 2, 3, 4], 20) == 1.6
    n, fl = rotation_plan(1 << 20)
    assert n == MAX_SETS and fl, (n, fl)
    n, fl = rotation_plan(100 << 20)
    assert n == 2 and not fl, (n, fl)
    n, fl = rotation_plan(30 << 20)
    assert n == 6 and not fl, (n, fl)
    assert iteration_count(0.5, 30, 1.0, 2000) == 2000
    assert iteration_count(100.0, 30, 1.0, 2000) == 30
    assert iteration_count(10.0, 30, 1.0, 2000) == 100
    a = parse_args(["--shapes", "4x32x4096x128", "1x8x2x512x1024x64", "--causal", "both",
                    "--backends", "flash,cudnn", "--run", "r1", "--commit", "abc",
                    "--backward", "--accuracy"])
    assert len(a.shape_list) == 2 and a.backend_list == ["flash", "cudnn"] and a.backward
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "sub", "x.jsonl")
        w = JsonlWriter(path)
        r = base_record("r1", "NVIDIA H200", "abc", "torch-sdpa-cudnn", "bf16", "fwd", s, True)
        r.update(timing_fields([1.0, 2.0, 3.0]))
        r["tops"] = tops(s, True, "fwd", r["median_ms"])
        w.write(r)
        e = base_record("r1", "NVIDIA H200", "abc", "torch-sdpa-flash", "bf16", "fwd", g, False)
        e["error"] = "RuntimeError: No available kernel"
        w.write(e)
        acc = base_record("r1", "NVIDIA H200", "abc", "torch-sdpa-flash", "bf16", "fwd", s, False)
        acc.update(reference="fp64-torch", tensor="O", inputs="gaussian", metric="cosine",
                   value=0.99999)
        w.write(acc)
        w.close()
        w2 = JsonlWriter(path)  # appends
        w2.write(r)
        nan = dict(acc, value=float("nan"), inputs="peaky")
        w2.write(nan)
        w2.close()
        lines = [json.loads(x) for x in open(path, encoding="utf-8")]
        assert len(lines) == 5 and lines[0]["median_ms"] == 2.0 and lines[4]["value"] is None and lines[0]["causal"] is True
        for k in ("run", "gpu", "commit", "impl", "mode", "direction", "scope", "B", "H", "Hkv",
                  "Nq", "Nk", "D", "causal", "layout", "config"):
            assert k in lines[0], k
        tab = human_table(lines)
        assert "ERROR" in tab and "torch-sdpa-cudnn" in tab
        assert "0.99999" in accuracy_table(lines)
        # backward accuracy lines: one per tensor and metric; a failed backend, one error line per tensor
        gpath = os.path.join(d, "g.jsonl")
        wg = JsonlWriter(gpath)
        gbase = base_record("r1", "NVIDIA H200", "abc", "torch-sdpa-flash", "bf16", "bwd", s, True)
        gbase.update(reference="fp64-torch", inputs="gaussian")
        for i, tensor in enumerate(GRAD_TENSORS):
            write_metrics(wg, dict(gbase, tensor=tensor),
                          dict(cosine=0.9999, rel_l1=0.011 + i * 1e-3, rmse=1e-3, rel_l2=0.02,
                               max_abs=0.1))
        cbase = dict(gbase, impl="torch-sdpa-cudnn")
        for tensor in GRAD_TENSORS:
            write_error(wg, dict(cbase, tensor=tensor), RuntimeError("No available kernel"))
        wg.close()
        glines = [json.loads(x) for x in open(gpath, encoding="utf-8")]
        assert len(glines) == 3 * len(ACCURACY_METRICS) + 3
        assert all(r["direction"] == "bwd" and r["reference"] == "fp64-torch" for r in glines)
        assert [r["metric"] for r in glines[:5]] == list(ACCURACY_METRICS)
        assert glines[-1]["error"] == "RuntimeError: No available kernel" and glines[-1]["tensor"] == "dV"
        gtab = accuracy_table(glines).splitlines()
        assert len(gtab) == 1 + 6, gtab  # header, flash dQ/dK/dV, cudnn dQ/dK/dV
        assert "dK" in gtab[2] and "0.012" in gtab[2] and "ERROR" in gtab[5]
    assert grad_seed(1000) == 1001
    g = parse_args(["--shapes", "1x4x1024x128", "--grad-accuracy", "--no-forward", "--save-inputs", "x"])
    assert g.grad_accuracy and not g.accuracy and g.no_forward and g.save_inputs == "x"
    sys.stderr.write("peers.py selftest: ok\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
