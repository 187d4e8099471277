#!/usr/bin/env python3
"""Power and clock of GPU 0 while something else runs, from NVML through ctypes (no pynvml needed).

  nvml_power.py sample OUT.csv [--period-ms 10]
      appends t (unix s), energy_mj (the board's energy counter), power_mw, sm_mhz, reasons (the
      clock-event bit mask: 0x4 is the software power cap) until killed;
  nvml_power.py report OUT.csv MARKS.txt [--jsonl FILE --run R --commit C --gpu NAME]
      MARKS.txt has "t_start t_end label" lines (one per timed command); within each window the
      runs of samples whose energy rate is above half the window's peak are the timed cases, in order. For each
      run's last STEADY_S seconds it prints the mean SM clock, the mean power (the energy counter's change
      between its first and last step there: NVML's power reading is a slow average) and the share of
      samples under the power cap, and with --jsonl writes one line per run (kind "power").

Why: under sustained load the H200 sits at its power cap and lowers its clock, so a kernel's time
there follows its energy per call; the clock and power of each case say whether it is power-bound
(docs/perf-notes-int8fp8.md, session 13).
"""
import argparse
import ctypes
import json
import sys
import time

STEADY_S = 1.0  # seconds at the end of each timed case that are reported (mean clock, power between counter steps)
RATE_S = 0.25  # window of the energy-counter rate that finds the timed cases (the counter moves in steps)
POWER_CAP_BIT = 0x4  # nvmlClocksEventReasonSwPowerCap


def nvml():
    lib = ctypes.CDLL("libnvidia-ml.so.1")
    check = lambda rc, what: rc == 0 or sys.exit(f"nvml_power: {what} failed with NVML error {rc}")
    check(lib.nvmlInit_v2(), "nvmlInit_v2")
    handle = ctypes.c_void_p()
    check(lib.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(handle)), "nvmlDeviceGetHandleByIndex_v2(0)")
    return lib, handle


def sample(out, period_ms):
    lib, h = nvml()
    energy, power, clock, reasons = ctypes.c_ulonglong(), ctypes.c_uint(), ctypes.c_uint(), ctypes.c_ulonglong()
    with open(out, "a", buffering=1) as f:
        f.write("t,energy_mj,power_mw,sm_mhz,reasons\n")
        while True:
            lib.nvmlDeviceGetTotalEnergyConsumption(h, ctypes.byref(energy))
            lib.nvmlDeviceGetPowerUsage(h, ctypes.byref(power))
            lib.nvmlDeviceGetClockInfo(h, 1, ctypes.byref(clock))  # NVML_CLOCK_SM
            lib.nvmlDeviceGetCurrentClocksEventReasons(h, ctypes.byref(reasons))
            f.write(f"{time.time():.4f},{energy.value},{power.value},{clock.value},{reasons.value}\n")
            time.sleep(period_ms / 1000)


def rate_w(rows, i):
    """Watts from the energy counter over the RATE_S before sample i (NVML's power reading is a slow average)."""
    j = i
    while j > 0 and rows[i]["t"] - rows[j]["t"] < RATE_S:
        j -= 1
    dt = rows[i]["t"] - rows[j]["t"]
    return (rows[i]["energy_mj"] - rows[j]["energy_mj"]) / 1000 / dt if dt > 0 else 0.0


def runs_in(rows, t0, t1):
    """Runs of consecutive samples in [t0, t1] whose energy rate is above half the window's peak rate."""
    idx = [i for i, r in enumerate(rows) if t0 <= r["t"] <= t1]
    if not idx:
        return []
    rate = {i: rate_w(rows, i) for i in idx}
    cut = max(rate.values()) / 2
    runs, cur = [], []
    for i in idx:
        if rate[i] > cut:
            cur.append(rows[i])
        elif cur:
            runs.append(cur)
            cur = []
    if cur:
        runs.append(cur)
    return [r for r in runs if r[-1]["t"] - r[0]["t"] >= STEADY_S]


def report(csv_path, marks_path, jsonl, run, commit, gpu):
    rows = []
    for line in open(csv_path):
        if line.startswith("t,"):
            continue
        t, e, p, c, why = line.strip().split(",")
        rows.append({"t": float(t), "energy_mj": int(e), "power_mw": int(p), "sm_mhz": int(c), "reasons": int(why)})
    out = open(jsonl, "a") if jsonl else None
    print(f"{'case':<44} {'run':>3} {'steady s':>8} {'SM MHz':>7} {'W':>6} {'capped':>7}")
    for line in open(marks_path):
        t0, t1, label = line.strip().split(" ", 2)
        for i, r in enumerate(runs_in(rows, float(t0), float(t1))):
            end = r[-1]["t"] - RATE_S  # the trailing rate keeps a run going for up to RATE_S after the case
            steady = [x for x in r if end - STEADY_S <= x["t"] <= end]
            # the counter moves in steps (about every 100 ms on the H200): power between its first and last step
            ticks = [x for k, x in enumerate(steady) if k > 0 and x["energy_mj"] != steady[k - 1]["energy_mj"]]
            dt = ticks[-1]["t"] - ticks[0]["t"] if len(ticks) >= 2 else 0.0
            watts = (ticks[-1]["energy_mj"] - ticks[0]["energy_mj"]) / 1000 / dt if dt > 0 else float("nan")
            mhz = sum(x["sm_mhz"] for x in steady) / len(steady)
            capped = sum(1 for x in steady if x["reasons"] & POWER_CAP_BIT) / len(steady)
            print(f"{label:<44} {i:>3} {dt:>8.2f} {mhz:>7.0f} {watts:>6.0f} {capped:>7.0%}")
            if out:
                out.write(json.dumps({"run": run, "gpu": gpu, "commit": commit, "kind": "power",
                                      "case": label, "timed_case": i, "steady_s": round(dt, 3),
                                      "sm_mhz_mean": round(mhz, 1), "power_w_mean": round(watts, 1),
                                      "power_capped_share": round(capped, 3)}) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample")
    s.add_argument("out")
    s.add_argument("--period-ms", type=float, default=10)
    r = sub.add_parser("report")
    r.add_argument("csv")
    r.add_argument("marks")
    r.add_argument("--jsonl")
    r.add_argument("--run", default="")
    r.add_argument("--commit", default="")
    r.add_argument("--gpu", default="", help="device name for the JSON lines (nvidia-smi's name)")
    a = ap.parse_args()
    if a.cmd == "sample":
        sample(a.out, a.period_ms)
    else:
        report(a.csv, a.marks, a.jsonl, a.run, a.commit, a.gpu)


if __name__ == "__main__":
    main()
