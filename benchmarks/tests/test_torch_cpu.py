"""CPU checks of peers.py's torch code (inputs, FP64 reference, metrics, GQA); skipped without torch."""

import json
import math
import os
import sys

import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import peers  # noqa: E402


@pytest.fixture(autouse=True)
def no_cuda_sync(monkeypatch):
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a, **k: None)


def sdpa64(q, k, v, causal):
    g = q.shape[1] // k.shape[1]
    k = k.double().repeat_interleave(g, dim=1)
    v = v.double().repeat_interleave(g, dim=1)
    return torch.nn.functional.scaled_dot_product_attention(q.double(), k, v, is_causal=causal)


@pytest.mark.parametrize("sleep_every", [0, 1, 3])
def test_sleep_ahead_protocol(tmp_path, monkeypatch, sleep_every):
    """--sleep-every: the GPU idles (torch.cuda._sleep) before the first timed call, then before every Nth."""
    monkeypatch.setattr(peers, "DEVICE", "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Fake GPU")
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    sleeps = []
    monkeypatch.setattr(torch.cuda, "_sleep", lambda n: sleeps.append(n), raising=False)
    out = tmp_path / "r.jsonl"
    rc = peers.main(["--shapes", "1x2x64x32", "--causal", "0", "--backends", "math", "--run", "t",
                     "--commit", "abc", "--out", str(out), "--warmup", "1", "--warmup-time", "0",
                     "--min-iters", "6", "--max-iters", "6", "--min-time", "0", "--sleep-every", str(sleep_every)])
    assert rc == 0
    (rec,) = [json.loads(l) for l in open(out) if "median_ms" in l]
    assert rec["sleep_every"] == sleep_every and rec["iters"] == 6
    # 5 estimate calls, then 6 timed ones; each loop sleeps before its first call and every Nth after
    expected = sum(peers.sleeps_before(i, sleep_every) for i in range(5)) + \
        sum(peers.sleeps_before(i, sleep_every) for i in range(6))
    assert len(sleeps) == expected
    assert expected == {0: 2, 1: 11, 3: 4}[sleep_every]


def test_do_bench_protocol(tmp_path, monkeypatch):
    """--do-bench: the figures are triton.testing.do_bench's own median and quantiles, labelled do_bench."""
    import sys
    import types
    monkeypatch.setattr(peers, "DEVICE", "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Fake GPU")
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    calls = []

    def do_bench(fn, warmup=25, rep=100, quantiles=None):
        fn()
        calls.append((warmup, rep, quantiles))
        return [2.0, 1.5, 2.5]
    testing = types.SimpleNamespace(do_bench=do_bench)
    monkeypatch.setitem(sys.modules, "triton", types.SimpleNamespace(testing=testing))
    monkeypatch.setitem(sys.modules, "triton.testing", testing)
    out = tmp_path / "r.jsonl"
    assert peers.main(["--shapes", "1x2x64x32", "--causal", "0", "--backends", "math", "--run", "t",
                       "--commit", "abc", "--out", str(out), "--do-bench"]) == 0
    (rec,) = [json.loads(l) for l in open(out) if "median_ms" in l]
    assert calls == [(25.0, 100.0, [0.5, 0.2, 0.8])]
    assert (rec["median_ms"], rec["p20_ms"], rec["p80_ms"], rec["protocol"]) == (2.0, 1.5, 2.5, "do_bench")
    assert "sleep_every" not in rec and rec["flush_mib"] == 256.0
    with pytest.raises(SystemExit):
        peers.parse_args(["--shapes", "1x2x64x32", "--do-bench", "--backward"])


@pytest.mark.parametrize("family", peers.FAMILIES)
@pytest.mark.parametrize("shape", ["2x4x96x32", "1x4x2x40x72x16"])
def test_inputs_reference_metrics(family, shape):
    s = peers.parse_shape(shape)
    q, k, v = peers.gen_inputs(torch, family, s, 5, device="cpu")
    assert q.shape == (s["B"], s["H"], s["Nq"], s["D"]) and q.dtype == torch.float32
    assert k.shape == (s["B"], s["Hkv"], s["Nk"], s["D"]) and v.shape == k.shape
    q2, _, _ = peers.gen_inputs(torch, family, s, 5, device="cpu")
    assert torch.equal(q, q2)  # seeded
    if family == "k-channel-offset":
        big = (k.mean(dim=2).abs() > 10).sum(dim=-1)  # per (b, h): offset channels
        assert int(big.min()) == int(big.max()) == round(0.12 * s["D"])
    for causal in ([False, True] if s["Nq"] == s["Nk"] else [False]):
        ref = peers.reference_fp64(torch, q, k, v, causal, 1.0 / math.sqrt(s["D"]),
                                   chunk_elems=s["Nk"] * 7)  # force several row blocks
        want = sdpa64(q, k, v, causal)
        assert torch.allclose(ref, want, atol=1e-10, rtol=1e-10)
        m = peers.error_metrics(torch, ref.to(torch.bfloat16), ref)
        assert 0.999 < m["cosine"] <= 1.0 + 1e-12 and 0 < m["rel_l1"] < 0.01
        assert 0 < m["rel_l2"] < 0.01 and m["rmse"] > 0 and m["max_abs"] > 0
        assert peers.error_metrics(torch, ref, ref)["rel_l2"] == 0


def test_sdpa_wrapper_gqa_and_save(tmp_path):
    s = peers.parse_shape("1x4x2x64x64x32")
    q, k, v = [t.to(torch.bfloat16) for t in peers.gen_inputs(torch, "gaussian", s, 1, "cpu")]
    sd = peers.Sdpa(torch, "math", s, True)
    with sd.ctx():
        sd.resolve_gqa(q, k, v)
        kk, vv = sd.prep_kv(k, v)
        o = sd(q, kk, vv)
    assert sd.gqa in ("enable_gqa", "repeat_interleave")
    ref = peers.reference_fp64(torch, q, k, v, True, 1.0 / math.sqrt(32))
    assert peers.error_metrics(torch, o, ref)["cosine"] > 0.999
    peers.save_npy(torch, str(tmp_path / "x"), q, k, v, s, "gaussian", "bf16", 1)
    meta = json.load(open(tmp_path / "x" / "meta.json"))
    assert meta["Hkv"] == 2 and meta["layout"] == "BHSD"
    import numpy as np
    assert np.load(tmp_path / "x" / "k.npy").shape == (1, 2, 64, 32)


class FakeEvent:
    def __init__(self, enable_timing=False):
        self.t = None

    def record(self, *a, **k):
        import time
        self.t = time.perf_counter()

    def elapsed_time(self, other):
        return (other.t - self.t) * 1e3


def test_main_flow_on_cpu(tmp_path, monkeypatch, capsys):
    """The whole GPU flow with CUDA pieces faked on the CPU (math/flash/cudnn backends)."""
    monkeypatch.setattr(peers, "DEVICE", "cpu")
    monkeypatch.setattr(peers, "FLUSH_BYTES", 1024)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Fake GPU")
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "_sleep", lambda n: None, raising=False)
    out = tmp_path / "r.jsonl"
    rc = peers.main(["--shapes", "1x2x64x32", "1x4x2x32x64x16", "--causal", "both",
                     "--backends", "math,flash,cudnn", "--backward", "--accuracy",
                     "--inputs", "gaussian,peaky", "--save-inputs", str(tmp_path / "inp"),
                     "--run", "cpu-test", "--commit", "abc", "--out", str(out),
                     "--warmup", "1", "--warmup-time", "0", "--min-iters", "3", "--max-iters", "5",
                     "--min-time", "0.01"])
    assert rc == 0
    recs = [json.loads(l) for l in open(out)]
    timing = [r for r in recs if "median_ms" in r]
    # math on CPU must time every direction of: MHA non-causal, MHA causal, GQA non-causal
    math_t = [r for r in timing if r["impl"] == "torch-sdpa-math"]
    assert len(math_t) == 9, math_t
    for r in math_t:
        assert r["p20_ms"] <= r["median_ms"] <= r["p80_ms"] and r["tops"] > 0 and r["iters"] >= 3
        assert r["run"] == "cpu-test" and r["gpu"] == "Fake GPU" and r["layout"] == "BHSD"
    assert all(r["gqa"] in ("enable_gqa", "repeat_interleave") for r in math_t if r["Hkv"] != r["H"])
    skipped = [r for r in recs if "skipped" in r]
    assert len(skipped) == 3 and all(r["Nq"] == 32 and r["causal"] for r in skipped)
    assert any("error" in r and r["impl"] == "torch-sdpa-cudnn" for r in recs)
    acc = [r for r in recs if "metric" in r and r["impl"] == "torch-sdpa-math"]
    # 2 families x (MHA: 2 causal + GQA: 1) x 5 metrics
    assert len(acc) == 2 * 3 * 5
    cos = [r["value"] for r in acc if r["metric"] == "cosine"]
    assert min(cos) > 0.999, cos
    assert {r["inputs"] for r in acc} == {"gaussian", "peaky"}
    d = tmp_path / "inp" / "1x2x64x32-peaky-bf16"
    assert sorted(os.listdir(d)) == ["k.npy", "meta.json", "q.npy", "ref_o.npy",
                                     "ref_o_causal.npy", "v.npy"]
    err = capsys.readouterr().err
    assert "torch-sdpa-math" in err and "cosine" in err
    assert "ERROR" in err.split("cosine")[1]  # cudnn accuracy failure shown


@pytest.mark.parametrize("shape", ["2x4x96x32", "1x4x2x40x72x16"])
def test_reference_grads_match_autograd(shape):
    s = peers.parse_shape(shape)
    q, k, v = [t.double() for t in peers.gen_inputs(torch, "k-channel-offset", s, 3, device="cpu")]
    do = peers.gen_grad(torch, s, peers.grad_seed(3), device="cpu").double()
    assert do.shape == q.shape
    for causal in ([False, True] if s["Nq"] == s["Nk"] else [False]):
        qg, kg, vg = [t.clone().requires_grad_(True) for t in (q, k, v)]
        want = torch.autograd.grad(sdpa64(qg, kg, vg, causal), (qg, kg, vg), do)
        got = peers.reference_grads_fp64(torch, q, k, v, do, causal, 1.0 / math.sqrt(s["D"]),
                                         chunk_elems=s["Nk"] * 7)  # several row blocks
        for name, g, w in zip(peers.GRAD_TENSORS, got, want):
            assert g.dtype == torch.float64 and g.shape == w.shape, name
            assert torch.allclose(g, w, atol=1e-10, rtol=1e-8), name


def test_grad_accuracy_flow_on_cpu(tmp_path, monkeypatch):
    """--grad-accuracy without timing: SDPA's gradients against FP64 and do.npy beside the inputs."""
    np = pytest.importorskip("numpy")
    monkeypatch.setattr(peers, "DEVICE", "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Fake GPU")
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    out = tmp_path / "g.jsonl"
    rc = peers.main(["--shapes", "1x2x64x32", "1x4x2x32x64x16", "--causal", "both",
                     "--backends", "math,cudnn", "--grad-accuracy", "--no-forward",
                     "--inputs", "gaussian", "--save-inputs", str(tmp_path / "inp"),
                     "--run", "g", "--commit", "abc", "--out", str(out)])
    assert rc == 0
    recs = [json.loads(l) for l in open(out)]
    assert not any("median_ms" in r for r in recs)
    lines = [r for r in recs if "metric" in r and r["impl"] == "torch-sdpa-math"]
    # (MHA: 2 causal settings + GQA: 1) x 3 tensors x 5 metrics
    assert len(lines) == 3 * 3 * 5
    assert {r["tensor"] for r in lines} == {"dQ", "dK", "dV"}
    assert all(r["direction"] == "bwd" and r["reference"] == "fp64-torch" for r in lines)
    assert min(r["value"] for r in lines if r["metric"] == "cosine") > 0.999
    assert max(r["value"] for r in lines if r["metric"] == "rel_l2") < 0.05
    assert any("error" in r and r["impl"] == "torch-sdpa-cudnn" and r["tensor"] == "dQ" for r in recs)
    d = tmp_path / "inp" / "1x2x64x32-gaussian-bf16"
    meta = json.load(open(d / "meta.json"))
    assert meta["do"] == "do.npy" and meta["do_seed"] == peers.grad_seed(meta["seed"])
    do = np.load(d / "do.npy")
    assert do.shape == (1, 2, 64, 32) and do.dtype == np.float32
    assert ((do.view(np.uint32) & 0xFFFF) == 0).all()  # BF16 values, widened
