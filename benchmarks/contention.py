"""Latency estimates under competing load: nas_hw vs nnabla_nas 0.15 on the real SearchNets.

The same K sampled subnetworks of the real nnabla_nas MobileNetV2 and DARTS SearchNets
(1x3x32x32; ``benchmarks/searchnets.py``) are estimated from scratch (fresh caches, fresh
estimators) under conditions this script creates itself: (a) no competing process of ours,
(b) one and (c) two CPU-bound competing processes (busy loops, started and stopped here, each
bounded in time). The conditions are interleaved and repeated (idle, 1, 2, idle, 2, 1, idle...);
the 1-minute load average, the runnable processes and the wall time are recorded per condition.
Side by side in every condition: nas_hw's ``LatencyGraphEstimator`` and ``LatencyEstimator`` and
nnabla_nas 0.15's (``nnabla_nas.utils.estimator.latency``), same runs per layer.

Reported per estimator and load level: the ratio of each subnetwork's estimate to its idle
estimate (median over the idle conditions): median and worst ``|loaded/idle - 1|``; for nas_hw,
the layer rows stored as clean (not flagged disturbed) whose value is more than 20% off the same
row's idle value, and the rows flagged. Then, on the idle machine (the end of the run), the
calibrated accuracy on the same SearchNets through ``benchmarks/accuracy.py`` (calibrated MAPE vs
the noise floor) at 32x32 and, in the full mode, 224x224.

    python benchmarks/contention.py --short     # idle/1/2/idle, 10 runs per layer, DARTS of 5 cells,
                                                # accuracy on 6 subnetworks at 32x32
    python benchmarks/contention.py             # 2 cycles, 20 runs, DARTS of 8 cells, accuracy on
                                                # 12 subnetworks at 32x32 and 224x224

Goal (issue 13): for nas_hw, median |loaded/idle - 1| <= 5% and worst <= 15% at both loads, no
row stored as clean more than 20% off its idle value, calibrated MAPE on an idle machine <= the
noise floor + 2 points. On a machine other users load, "idle" is not idle: read the loads.
"""
import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import time
from datetime import datetime, timezone

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from searchnets import SEARCHNETS, build_searchnet  # noqa: E402  (imports nas_hw first)

ESTIMATORS = ("nas_hw_graph", "nas_hw_module", "nnabla_nas_graph", "nnabla_nas_module")
DRIFT = 0.20


def burn(stop_at):
    """A CPU-bound competitor (a busy Python loop) until ``stop_at`` (time.time())."""
    x = 0
    while time.time() < stop_at:
        x += 1


def estimate_space(space, choices, shape, args):
    """Every estimator's estimate of every subnetwork, fresh caches and estimators; the nas_hw
    estimators' stored rows (value, flagged) and the layers their estimates used flagged."""
    import nnabla_nas.utils.estimator.latency as nl

    from nas_hw import LatencyCache, LatencyEstimator, LatencyGraphEstimator
    from nas_hw.estimators.calibrated import build_inference_graph

    layer = dict(ext_name="cpu", device_id=0, n_run=args.runs, n_warmup=args.warmup, max_measure_execution_time=10)
    caches = {"nas_hw_graph": LatencyCache(":memory:"), "nas_hw_module": LatencyCache(":memory:")}
    ests = {"nas_hw_graph": LatencyGraphEstimator(cache=caches["nas_hw_graph"], **layer),
            "nas_hw_module": LatencyEstimator(cache=caches["nas_hw_module"], **layer),
            "nnabla_nas_graph": nl.LatencyGraphEstimator(device_id=0, ext_name="cpu", n_run=args.runs,
                                                         n_warmup=args.warmup),
            "nnabla_nas_module": nl.LatencyEstimator(device_id=0, ext_name="cpu", n_run=args.runs,
                                                     n_warmup=args.warmup)}
    out = {k: [] for k in ESTIMATORS}
    flagged_used = {"nas_hw_graph": 0, "nas_hw_module": 0}
    seconds = {k: 0.0 for k in ESTIMATORS}
    for ch in choices:
        net = space.derive(ch)
        x, y = build_inference_graph(net, shape)
        for key in ESTIMATORS:
            t0 = time.perf_counter()
            if key == "nas_hw_graph":
                value = ests[key].get_estimation(y, inputs=[x])
            elif key == "nas_hw_module":
                value = ests[key].get_estimation(net)
            elif key == "nnabla_nas_graph":
                value = ests[key].get_estimation(y)
            else:
                value = ests[key].get_estimation(net)
            seconds[key] += time.perf_counter() - t0
            out[key].append(float(value))
            if key in flagged_used:
                flagged_used[key] += len(ests[key].flagged)
    rows = {k: {r.signature: (r.stats.robust, bool(r.stats.disturbed)) for r in c.records() if not r.noop}
            for k, c in caches.items()}
    for c in caches.values():
        c.close()
    return {"estimates": out, "rows": rows, "flagged_used": flagged_used, "seconds": seconds}


def run_condition(spaces, competitors, args):
    from nas_hw.measure.load import load1, others_running

    stop_at = time.time() + args.max_condition_s
    procs = [mp.Process(target=burn, args=(stop_at,), daemon=True) for _ in range(competitors)]
    for p in procs:
        p.start()
    try:
        if procs:
            time.sleep(1.0)
        start, load_start, running = time.time(), load1(), [others_running()]
        result = {}
        for name, (space, choices) in spaces.items():
            result[name] = estimate_space(space, choices, (1, 3, 32, 32), args)
            running.append(others_running())
        load_end = load1()
    finally:
        for p in procs:
            p.terminate()
            p.join()
    running = [r for r in running if r is not None]
    return {"competitors": competitors, "load1_start": load_start, "load1_end": load_end,
            "others_running_mean": float(np.mean(running)) if running else None,
            "seconds": time.time() - start, "spaces": result}


def summarise(conditions):
    """Per estimator and level: |loaded/idle - 1| (median, worst) over subnetworks, spaces and
    repeats; for nas_hw the clean rows > 20% off their idle value and the flagged rows."""
    idle = [c for c in conditions if c["competitors"] == 0]
    spaces = list(idle[0]["spaces"])
    out = {}
    for level in sorted({c["competitors"] for c in conditions}):
        chosen = [c for c in conditions if c["competitors"] == level]
        for key in ESTIMATORS:
            errors = []
            for name in spaces:
                ref = np.median([c["spaces"][name]["estimates"][key] for c in idle], axis=0)
                for c in chosen:
                    errors += list(np.asarray(c["spaces"][name]["estimates"][key]) / ref - 1)
            e = 100 * np.abs(errors)
            cell = {"median_pct": float(np.median(e)), "worst_pct": float(e.max()), "n": len(e)}
            if key.startswith("nas_hw"):
                clean = flagged = over = 0
                worst = 0.0
                for name in spaces:
                    idle_rows = {}
                    for c in idle:
                        for sig, (v, bad) in c["spaces"][name]["rows"][key].items():
                            if not bad:
                                idle_rows.setdefault(sig, []).append(v)
                    for c in chosen:
                        for sig, (v, bad) in c["spaces"][name]["rows"][key].items():
                            if bad:
                                flagged += 1
                                continue
                            clean += 1
                            ref_v = np.median(idle_rows.get(sig) or [np.nan])
                            if np.isfinite(ref_v) and ref_v > 0:
                                d = abs(v / ref_v - 1)
                                worst = max(worst, d)
                                over += int(d > DRIFT)
                cell.update({"rows_clean": clean, "rows_flagged": flagged, "clean_rows_over_20pct": over,
                             "clean_rows_worst_pct": 100 * worst})
            out.setdefault(key, {})["idle" if level == 0 else f"{level} competing"] = cell
    return out


def accuracy_idle(args):
    """Calibrated accuracy on the real SearchNets on the idle machine (benchmarks/accuracy.py)."""
    import tempfile

    import accuracy

    combos = []
    for res in args.resolutions:
        acc_args = argparse.Namespace(k=args.acc_k, runs=args.acc_runs if res < 128 else max(5, args.acc_runs // 2),
                                      warmup=args.warmup, seed=args.seed, incontext=False, small=args.short)
        with tempfile.TemporaryDirectory() as tmp:
            nnas = accuracy.nnabla_nas_estimators(acc_args)
            for name in SEARCHNETS:
                combo = accuracy.run_combo(f"{name}-searchnet", res, acc_args, os.path.join(tmp, "c.sqlite"), nnas)
                combos.append({k: combo[k] for k in ("space", "resolution", "metrics", "goal", "calibration",
                                                    "seconds")})
                print(f"  accuracy {name} {res}px: " + ", ".join(
                    f"{k} MAPE {combo['metrics'][k]['mape_pct']:.1f}%" for k in
                    ("graph_raw", "graph_cal", "module_cal", "nnas_graph", "true_b")), flush=True)
    return combos


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--short", action="store_true", help="one cycle (idle, 1, 2, idle); accuracy at 32x32 only")
    p.add_argument("--k", type=int, default=12, help="sampled subnetworks per SearchNet (12)")
    p.add_argument("--runs", type=int, default=None, help="timed runs per layer, every estimator (full 20, short 10)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--acc-k", type=int, default=None, help="subnetworks per SearchNet in the accuracy part "
                                                           "(full 12, short 6)")
    p.add_argument("--repeats", type=int, default=None, help="cycles of the conditions (full 2, short 1)")
    p.add_argument("--acc-runs", type=int, default=None, help="forwards per true latency in the accuracy part "
                                                              "(full 20, short 10)")
    p.add_argument("--resolutions", type=int, nargs="+", default=None, help="accuracy part (full: 32 224)")
    p.add_argument("--no-accuracy", action="store_true", help="skip the accuracy part")
    p.add_argument("--max-condition-s", type=float, default=900, help="competitors never outlive this (s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=os.path.join(HERE, "results", "contention.json"))
    args = p.parse_args(argv)
    args.repeats = args.repeats or (1 if args.short else 2)
    args.runs = args.runs or (10 if args.short else 20)
    args.acc_k = args.acc_k or (6 if args.short else 12)
    args.acc_runs = args.acc_runs or (10 if args.short else 20)
    args.resolutions = args.resolutions or ([32] if args.short else [32, 224])
    from nnabla.logger import logger as nnabla_logger
    import logging

    nnabla_logger.setLevel(logging.ERROR)
    logging.basicConfig(level=logging.ERROR)
    from nas_hw.estimators.calibrated import random_choices

    started = time.time()
    spaces = {}
    for i, name in enumerate(SEARCHNETS):
        space = build_searchnet(name, small=args.short)
        rng, chosen = np.random.RandomState(args.seed + i), []
        while len(chosen) < args.k:
            ch = tuple(random_choices(space, rng))
            if ch not in chosen:
                chosen.append(ch)
        spaces[name] = (space, [list(c) for c in chosen])
    order = [0]
    for r in range(args.repeats):
        order += [1, 2, 0] if r % 2 == 0 else [2, 1, 0]
    conditions = []
    for n in order:
        conditions.append(run_condition(spaces, n, args))
        c = conditions[-1]
        print(f"  condition {n} competing: load1 {c['load1_start']:.2f} -> {c['load1_end']:.2f}, "
              f"{c['others_running_mean']:.1f} other runnable, {c['seconds']:.0f} s", flush=True)
    summary = summarise(conditions)
    accuracy_combos = [] if args.no_accuracy else accuracy_idle(args)
    doc = {"benchmark": "contention", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "command": "python benchmarks/contention.py " + " ".join(sys.argv[1:] if argv is None else argv),
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform()}, "settings": vars(args),
           "order": order, "wall_s": time.time() - started, "summary": summary, "accuracy": accuracy_combos,
           "conditions": [{k: v for k, v in c.items() if k != "spaces"} | {
               "seconds_per_estimator": {name: s["seconds"] for name, s in c["spaces"].items()},
               "flagged_used": {name: s["flagged_used"] for name, s in c["spaces"].items()}}
               for c in conditions]}
    print(f"\n|loaded/idle - 1| in % over {args.k} subnetworks x {len(SEARCHNETS)} SearchNets (median / worst)")
    levels = list(next(iter(summary.values())))
    print(f"{'estimator':20s} " + " ".join(f"{lv:>16s}" for lv in levels) + "   clean rows > 20% off / flagged (loaded)")
    for key in ESTIMATORS:
        cells = [f"{summary[key][lv]['median_pct']:5.1f} / {summary[key][lv]['worst_pct']:6.1f}" for lv in levels]
        rows = ""
        if key.startswith("nas_hw"):
            rows = "   " + ", ".join(f"{lv}: {summary[key][lv]['clean_rows_over_20pct']}/{summary[key][lv]['rows_flagged']}"
                                     f" of {summary[key][lv]['rows_clean'] + summary[key][lv]['rows_flagged']}"
                                     for lv in levels if lv != "idle")
        print(f"{key:20s} " + " ".join(f"{c:>16s}" for c in cells) + rows)
    print("load1 per condition:", [(c["competitors"], round(c["load1_start"], 2), round(c["load1_end"], 2))
                                  for c in conditions])
    print(f"wall time {doc['wall_s'] / 60:.1f} min")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as fh:
            json.dump(doc, fh, indent=1)
        print("wrote", args.out)
    return doc


if __name__ == "__main__":
    main()
