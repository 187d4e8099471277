"""Tests of the benchmark scripts' non-GPU logic (no torch needed): python3 -m pytest benchmarks/tests"""

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import peers  # noqa: E402
import plot  # noqa: E402
import plot_accuracy  # noqa: E402
import summarize  # noqa: E402


def rec(impl, mode, N, D, causal, ms, run="r1", direction="fwd", scope="kernel", B=4, H=32):
    s = dict(B=B, H=H, Hkv=H, Nq=N, Nk=N, D=D)
    r = peers.base_record(run, "NVIDIA H200", "abc", impl, mode, direction, s, causal)
    r["scope"] = scope
    r.update(median_ms=ms, p20_ms=ms * 0.98, p80_ms=ms * 1.02,
             tops=peers.tops(s, causal, direction, ms))
    return r


def synthetic(path):
    lines = []
    for N in (1024, 2048, 4096, 8192):
        for D in (64, 128):
            for causal in (False, True):
                base = 1e-3 * N * N / 4096.0 * D / 64.0
                lines.append(rec("torch-sdpa-cudnn", "bf16", N, D, causal, base))
                lines.append(rec("torch-sdpa-flash", "bf16", N, D, causal, base * 1.7))
                lines.append(rec("sagejit", "int8-fp8", N, D, causal, base * 0.8))
                lines.append(rec("sagejit", "int8-fp8", N, D, causal, base, scope="end-to-end"))
                lines.append(rec("torch-sdpa-cudnn", "bf16", N, D, causal, base * 2.5,
                                 direction="bwd"))
    # an earlier run, an error line and an accuracy line: must not disturb the tables
    lines.insert(0, rec("torch-sdpa-cudnn", "bf16", 4096, 128, False, 99.0, run="r0"))
    err = peers.base_record("r1", "NVIDIA H200", "abc", "torch-sdpa-efficient", "bf16", "fwd",
                            peers.parse_shape("4x32x4096x128"), False)
    err["error"] = "RuntimeError: No available kernel"
    lines.append(err)
    acc = peers.base_record("r1", "NVIDIA H200", "abc", "sagejit", "int8-fp8", "fwd",
                            peers.parse_shape("4x32x4096x128"), False)
    acc.update(metric="cosine", value=0.9993, reference="fp64-torch", tensor="O", inputs="gaussian")
    lines.append(acc)
    with open(path, "w") as fh:
        for l in lines:
            fh.write(json.dumps(l) + "\n")
    return lines


def test_selftest():
    assert peers.selftest() == 0


def test_parse_and_flops():
    s = peers.parse_shape("2x32x8x1024x4096x64")
    assert s["Hkv"] == 8 and s["Nq"] == 1024 and s["Nk"] == 4096
    assert peers.flops(s, False) == 4.0 * 2 * 32 * 1024 * 4096 * 64
    assert peers.flops(s, True, "bwd") == pytest.approx(0.5 * 2.5 * peers.flops(s, False))
    with pytest.raises(ValueError):
        peers.parse_shape("2x32x7x1024x4096x64")  # 32 % 7 != 0
    with pytest.raises(SystemExit):
        peers.parse_args(["--backends", "flash,bogus"])
    a = peers.parse_args(["--shapes", "1x2x128x64,1x2x256x64", "--causal", "1", "--dtype", "fp16"])
    assert a.causal_list == [True] and a.dtype_list == ["fp16"] and len(a.shape_list) == 2
    assert a.run and a.commit


def test_plot(tmp_path):
    pytest.importorskip("matplotlib")
    path = str(tmp_path / "r.jsonl")
    synthetic(path)
    recs = plot.load_jsonl([path])
    run, sel = plot.pick_run(recs)
    assert run == "r1" and all(r["run"] == "r1" for r in sel)
    panels = plot.series(sel, "fwd")
    assert sorted(panels) == [(64, False), (64, True), (128, False), (128, True)]
    pts = panels[(128, False)]["torch-sdpa-cudnn bf16 kernel"]
    assert [p[0] for p in pts] == [1024, 2048, 4096, 8192]
    out = str(tmp_path / "r.png")
    assert plot.main([path, "--out", out]) == 0
    assert os.path.getsize(out) > 1000
    assert plot.main([path, "--out", str(tmp_path / "b.png"), "--direction", "bwd"]) == 0


def test_summarize(tmp_path):
    path = str(tmp_path / "r.jsonl")
    synthetic(path)
    text = summarize.summarize(summarize.load_jsonl([path]), run="r1", accuracy=True)
    rows = [l for l in text.splitlines() if l.startswith("| B4 H32 N4096 D128 | no | fwd | int8-fp8 | kernel")]
    assert len(rows) == 1, text
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    # sagejit 0.8x cuDNN's time -> 1.25x; flash 1.7x -> 2.12x
    assert "1.25x" in cells and "2.12x" in cells, cells
    assert "99" not in rows[0]
    assert "0.9993" in text
    both = summarize.summarize(summarize.load_jsonl([path]))
    assert "### run r1" in both and "### run r0" in both


def test_summarize_keeps_protocols_apart(tmp_path):
    """Lines of two timing protocols in one run: each sagejit line is compared with the peer of its protocol."""
    def line(impl, mode, ms, protocol, scope="kernel"):
        r = peers.base_record("r", "NVIDIA H200", "abc", impl, mode, "fwd", peers.parse_shape("4x32x4096x128"), False)
        r.update(scope=scope, median_ms=ms, tops=1.0, protocol=protocol)
        return r
    recs = [line("sagejit", "int8-fp8", 1.3, "back-to-back"), line("sagejit", "int8-fp8", 1.2, "gap"),
            line("torch-sdpa-cudnn", "bf16", 1.82, "back-to-back"), line("torch-sdpa-cudnn", "bf16", 1.8, "gap")]
    path = str(tmp_path / "p.jsonl")
    with open(path, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in recs)
    text = summarize.summarize(summarize.load_jsonl([path]))
    rows = {c[5]: c for c in ([x.strip() for x in l.strip("|").split("|")] for l in text.splitlines()
                              if l.startswith("| B4 H32 N4096 D128"))}
    assert sorted(rows) == ["back-to-back", "gap"], text
    assert rows["back-to-back"][-1] == "1.40x" and rows["gap"][-1] == "1.50x", text


def grad_line(impl, tensor, metric, value, causal=False, mode="bf16", run="r1"):
    r = peers.base_record(run, "NVIDIA H200", "abc", impl, mode, "bwd",
                          peers.parse_shape("1x4x1024x128"), causal)
    r.update(metric=metric, value=value, tensor=tensor, inputs="gaussian",
             reference="fp64-cpu" if impl.startswith("sagejit") else "fp64-torch")
    return r


def test_backward_accuracy_table(tmp_path):
    # rel_l2 (sagejit, cudnn, flash) per tensor; rel_l1 the same values x 0.8
    errs = {"dQ": (0.02, 0.012, 0.009),   # 2.22x the better, 1.67x the worse
            "dK": (0.01, 0.008, 0.006),   # 1.67x, 1.25x
            "dV": (0.05, 0.01, 0.02)}     # 5x, 2.5x
    lines = []
    for tensor, (mine, cudnn, flash) in errs.items():
        for metric, f in (("rel_l2", 1.0), ("rel_l1", 0.8)):
            lines.append(grad_line("sagejit", tensor, metric, mine * f))
            lines.append(grad_line("torch-sdpa-cudnn", tensor, metric, cudnn * f))
            lines.append(grad_line("torch-sdpa-flash", tensor, metric, flash * f))
            lines.append(grad_line("sagejit-emulation", tensor, metric, 0.5, mode="sagebwd-int8"))
        lines.append(grad_line("sagejit", tensor, "cosine", 0.9999))
    # causal: cuDNN's backward failed (an error line), so flash alone is the peer
    for tensor in peers.GRAD_TENSORS:
        for metric in ("rel_l2", "rel_l1"):
            lines.append(grad_line("sagejit", tensor, metric, 0.01, causal=True))
            lines.append(grad_line("torch-sdpa-flash", tensor, metric, 0.008, causal=True))
        err = grad_line("torch-sdpa-cudnn", tensor, "rel_l2", None, causal=True)
        del err["metric"], err["value"]
        err["error"] = "RuntimeError: No available kernel"
        lines.append(err)
    lines.append(grad_line("sagejit", "dQ", "rel_l2", 9.0, run="r0"))  # another run: not compared
    path = str(tmp_path / "g.jsonl")
    with open(path, "w") as fh:
        for l in lines:
            fh.write(json.dumps(l) + "\n")
    text = summarize.summarize(summarize.load_jsonl([path]), run="r1", accuracy=True)
    rows = {}
    for l in text.splitlines():
        cells = [c.strip() for c in l.strip("|").split("|")]
        if len(cells) == 16 and cells[4] in errs:
            rows[(cells[1], cells[4])] = cells
    assert len(rows) == 6, text
    dq = rows[("no", "dQ")]
    assert dq[:5] == ["B1 H4 N1024 D128", "no", "gaussian", "bf16", "dQ"]
    assert dq[5:10] == ["0.02", "0.012", "0.009", "2.22", "1.67"]   # rel_l2
    assert dq[10:15] == ["0.016", "0.0096", "0.0072", "2.22", "1.67"]  # rel_l1
    assert dq[15] == "vs worse only"
    assert rows[("no", "dK")][15] == "yes" and rows[("no", "dV")][15] == "no"
    causal = rows[("yes", "dV")]
    assert causal[6] == "-" and causal[8:10] == ["1.25", "1.25"] and causal[15] == "yes"
    assert "within 2x of the better SDPA backend (rel L2 and rel L1): 4 of 6 rows; of the worse: 5 of 6" in text
    assert "### run r0" not in text and "| 9 |" not in text
    assert summarize.within_bar([(None, None), (1.0, 1.0)]) == "-"


def test_plot_accuracy(tmp_path):
    pytest.importorskip("matplotlib")
    path = str(tmp_path / "a.jsonl")
    lines = []
    for impl, mode, ablation, N in (("sagejit-emulation", "nvfp4", "", 1024),
                                    ("sagejit-emulation", "nvfp4", "mxfp4", 1024),
                                    ("sagejit", "nvfp4-emulated", "", 1024),
                                    ("sagejit", "nvfp4-emulated", "", 32768)):
        r = peers.base_record("r", "NVIDIA H200", "abc", impl, mode, "fwd",
                              peers.parse_shape("1x2x%dx128" % N), False)
        r.update(metric="rel_l1", value=0.2 if ablation else 0.18, reference="fp64-cpu", tensor="O",
                 inputs="gaussian")
        if ablation:
            r["ablation"] = ablation
        lines.append(r)
    with open(path, "w") as fh:
        for l in lines:
            fh.write(json.dumps(l) + "\n")
    out = str(tmp_path / "a.png")
    assert plot_accuracy.main([path, "--out", out, "--bar", "gaussian=0.21"]) == 0
    assert os.path.getsize(out) > 1000
    assert plot_accuracy.variant(lines[1]) == "nvfp4:mxfp4"


def test_power_report_finds_timed_cases(tmp_path):
    """Two timed cases in one marked window (a rested gap between them): each is found by the energy
    counter's rate, and its last second's clock and power come out of the counter, not NVML's slow average."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "probes"))
    import nvml_power  # noqa: E402

    rows, t, e = [], 100.0, 0
    for seconds, watts, mhz, reasons in [(2, 120, 1980, 0), (2, 690, 1750, 4), (2, 120, 1980, 0), (2, 600, 1950, 0),
                                         (1, 120, 1980, 0)]:
        for _ in range(int(seconds / 0.01)):
            t += 0.01
            e += int(watts * 10)  # mJ in 10 ms
            rows.append(f"{t:.4f},{e},120000,{mhz},{reasons}")  # the power column lags: a constant 120 W
    (tmp_path / "p.csv").write_text("t,energy_mj,power_mw,sm_mhz,reasons\n" + "\n".join(rows) + "\n")
    (tmp_path / "m.txt").write_text("100 109 int8-fp8 default abc\n")
    nvml_power.report(tmp_path / "p.csv", tmp_path / "m.txt", tmp_path / "o.jsonl", "R", "C", "GPU")
    lines = [json.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [x["timed_case"] for x in lines] == [0, 1]
    assert abs(lines[0]["power_w_mean"] - 690) < 15 and lines[0]["sm_mhz_mean"] == 1750
    assert lines[0]["power_capped_share"] == 1.0 and lines[1]["power_capped_share"] == 0.0
    assert abs(lines[1]["power_w_mean"] - 600) < 15 and lines[1]["gpu"] == "GPU"
