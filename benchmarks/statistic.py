"""Which per-layer statistic stays true on a busy machine? (the choice behind nas_hw's robust statistic)

Times nnabla functions typical of NAS spaces (depthwise and pointwise convolutions, batch
normalisation, activations, an addition, an affine layer; at 32x32-like and 224x224-like sizes)
alone, as the layer-based estimators do, under conditions this script creates itself: no
competing process, and one or two competing CPU-bound processes of two kinds (``spin``: a busy
Python loop; ``matmul``: numpy matrix products, which also load caches and memory as a training
job does), started and stopped here (each bounded in time). Each condition lasts
``--condition-s`` seconds (long enough for the 1-minute load average to follow it in the full
mode), the conditions are interleaved and the cycle repeated. Within a condition the layers are
measured again and again, two ways each time:

* ``rounds``: nas_hw's timing core (:func:`nas_hw.measure.timing.time_rounds`): the runs split
  into rounds, the process sleeping briefly before each round;
* ``contiguous``: the same number of runs in one block, as layers were measured before.

For each candidate statistic it reports, over layers and measurements, how far the loaded value
lands from the same layer's idle value (``|value/idle - 1|``): median, 95th percentile and worst.
The idle value of a layer and statistic is its median over the idle conditions' measurements
whose every round the CPU speed probe found at full speed (:class:`nas_hw.measure.load.SpeedProbe`;
all idle measurements if none was): on a shared machine "no competing process of ours" is not
idle, and the other users' load slows the cores now and then by about a third. For the chosen statistic it also reports how the
disturbance rule (a spread limit on the rounds) would sort the measurements: how many are
flagged, and the worst error among those it would store as clean.

    python benchmarks/statistic.py --short                     # about 2 minutes
    python benchmarks/statistic.py --out benchmarks/results/statistic.json   # about 20 minutes
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

ROUND_STATISTICS = ("mean", "trimmed_mean_10", "median", "p25", "p10", "min",
                    "median_of_round_medians", "median_of_round_mins", "mean_of_round_mins",
                    "median_of_fast_round_mins")
CONTIGUOUS_STATISTICS = ("contiguous_mean", "contiguous_median", "contiguous_p10", "contiguous_min")
STATISTICS = ROUND_STATISTICS + CONTIGUOUS_STATISTICS
CHOSEN = "min"  # what nas_hw.measure.timing serves: the minimum of the runs taken in rounds
SPREAD_LIMITS = (0.03, 0.05, 0.1, 0.15, 0.2)


def burn(stop_at, kind="spin"):
    """A CPU-bound competitor until ``stop_at`` (time.time()): ``spin`` is a busy Python loop (the
    core only), ``matmul`` multiplies 256x256 float32 matrices with numpy in one thread (caches and
    memory bandwidth too, as a training job does)."""
    if kind == "matmul":
        os.environ["OMP_NUM_THREADS"] = "1"
        a = np.random.RandomState(0).rand(256, 256).astype(np.float32)
        while time.time() < stop_at:
            a = (a @ a) / 256.0
        return
    x = 0
    while time.time() < stop_at:
        x += 1


def make_layers(large=True):
    import nnabla as nn
    import nnabla.functions as F

    rng = np.random.RandomState(0)

    def param(*shape):
        return nn.Variable.from_numpy_array(rng.randn(*shape).astype(np.float32))

    specs = [
        ("dwconv3x3 c48 16x16", lambda x: F.depthwise_convolution(x, param(48, 3, 3), pad=(1, 1)), (1, 48, 16, 16)),
        ("dwconv5x5 c96 8x8", lambda x: F.depthwise_convolution(x, param(96, 5, 5), pad=(2, 2)), (1, 96, 8, 8)),
        ("dwconv7x7 c144 8x8", lambda x: F.depthwise_convolution(x, param(144, 7, 7), pad=(3, 3)), (1, 144, 8, 8)),
        ("conv1x1 16->48 16x16", lambda x: F.convolution(x, param(48, 16, 1, 1)), (1, 16, 16, 16)),
        ("conv3x3 3->32 32x32", lambda x: F.convolution(x, param(32, 3, 3, 3), pad=(1, 1)), (1, 3, 32, 32)),
        ("batchnorm c48 16x16", lambda x: F.batch_normalization(
            x, param(1, 48, 1, 1), param(1, 48, 1, 1), param(1, 48, 1, 1) * 0, param(1, 48, 1, 1) ** 2,
            batch_stat=False), (1, 48, 16, 16)),
        ("relu6 c96 8x8", lambda x: F.relu6(x), (1, 96, 8, 8)),
        ("add2 c24 16x16", lambda x: F.add2(x, x), (1, 24, 16, 16)),
        ("affine 256->10", lambda x: F.affine(F.reshape(x, (1, 256)), param(256, 10)), (1, 256, 1, 1)),
    ]
    if large:
        specs += [
            ("dwconv3x3 c32 112x112", lambda x: F.depthwise_convolution(x, param(32, 3, 3), pad=(1, 1)),
             (1, 32, 112, 112)),
            ("conv1x1 32->16 112x112", lambda x: F.convolution(x, param(16, 32, 1, 1)), (1, 32, 112, 112)),
            ("conv3x3 3->16 224x224", lambda x: F.convolution(x, param(16, 3, 3, 3), pad=(1, 1), stride=(2, 2)),
             (1, 3, 224, 224)),
        ]
    layers = []
    for name, fn, shape in specs:
        x = nn.Variable(shape, need_grad=False)
        x.d = rng.randn(*shape)
        with nn.auto_forward(False):
            y = fn(x)
        y.forward()
        layers.append((name, y))
    return layers


def statistics(taken, contiguous):
    """Every candidate statistic of one measurement: ``taken`` (the timing core's
    :class:`~nas_hw.measure.timing.Rounds`) and ``contiguous`` (one block of runs of the same count)."""
    from nas_hw.measure.timing import judged, spread_of, summarize

    rounds = taken.runs
    core = summarize(taken)
    runs = np.concatenate([np.asarray(r) for r in rounds])
    k = int(0.1 * len(runs))
    ordered = np.sort(runs)
    block = np.asarray(contiguous)
    mins = [float(np.min(r)) for r in rounds]
    return {
        "mean": float(runs.mean()),
        "trimmed_mean_10": float(ordered[k:len(ordered) - k].mean()),
        "median": float(np.median(runs)),
        "p25": float(np.percentile(runs, 25)),
        "p10": float(np.percentile(runs, 10)),
        "min": float(runs.min()),
        "median_of_round_medians": float(np.median([np.median(r) for r in rounds])),
        "median_of_round_mins": float(np.median(mins)),
        "mean_of_round_mins": float(np.mean(mins)),
        "median_of_fast_round_mins": float(np.median([min(r) for r in (taken.fast() or rounds)])),
        "contiguous_mean": float(block.mean()),
        "contiguous_median": float(np.median(block)),
        "contiguous_p10": float(np.percentile(block, 10)),
        "contiguous_min": float(block.min()),
        # for the disturbance rule: the spread of the rounds the value came from, the rounds'
        # spread without the probe, and whether most rounds ran on a slowed core
        "spread": core.spread, "judged": judged(rounds), "above_s": float(np.median(mins)) - min(mins),
        "core_value": core.value,
        "slowed": 2 * len(taken.fast()) < len(rounds), "all_fast": len(taken.fast()) == len(rounds),
    }


def measure_layer(y, args):
    from nas_hw.measure.load import cpu_speed_probe
    from nas_hw.measure.timing import time_rounds

    def fn():
        y.forward(clear_no_need_grad=True)

    taken = time_rounds(fn, n_run=args.runs, n_warmup=2, max_measure_execution_time=args.budget,
                        n_rounds=args.rounds, probe=cpu_speed_probe().ratio)
    contiguous = time_rounds(fn, n_run=sum(len(r) for r in taken.runs), n_warmup=0,
                             max_measure_execution_time=args.budget, n_rounds=1, pause_s=0).runs[0]
    return statistics(taken, contiguous)


def run_condition(layers, competitors, kind, args):
    from nas_hw.measure.load import load1, others_running

    stop_at = time.time() + args.condition_s + 30  # a competitor never outlives the benchmark by much
    procs = [mp.Process(target=burn, args=(stop_at, kind), daemon=True) for _ in range(competitors)]
    for p in procs:
        p.start()
    try:
        if procs:
            time.sleep(0.5)
        load_start = load1()
        started = time.time()
        measurements = {name: [] for name, _ in layers}
        running = []
        while time.time() - started < args.condition_s:
            for name, y in layers:
                running.append(others_running())
                measurements[name].append(measure_layer(y, args))
        load_end = load1()
    finally:
        for p in procs:
            p.terminate()
            p.join()
    running = [r for r in running if r is not None]
    return {"competitors": competitors, "kind": kind if competitors else "none",
            "load1_start": load_start, "load1_end": load_end,
            "others_running_mean": float(np.mean(running)) if running else None,
            "seconds": args.condition_s, "passes": len(next(iter(measurements.values()))),
            "measurements": measurements}


def _quantiles(errors):
    e = 100 * np.abs(np.asarray(errors))
    return {"median_pct": float(np.median(e)), "p95_pct": float(np.percentile(e, 95)), "worst_pct": float(e.max()),
            "n": int(len(e))}


def _flagged(m, limit, probe):
    """Whether the disturbance rule flags measurement ``m`` (one attempt, no repeat): spread
    above ``limit`` and the median round more than ``SPREAD_FLOOR_S`` above the value (judged
    measurements only), or with the probe, most rounds slowed (the timing core's rule)."""
    from nas_hw.constants import SPREAD_FLOOR_S

    spread, above = m["spread"], m["above_s"]
    return bool((probe and m["slowed"])
                or (m["judged"] and spread is not None and spread > limit and above > SPREAD_FLOOR_S))


def summarise(conditions):
    """Per statistic and condition type (idle noise, 1 or 2 competitors of each kind): the
    quantiles of |value/idle - 1| over layers and measurements, idle = the median over every idle
    measurement of the layer. And the disturbance rule's sorting of the chosen statistic."""
    idle = [c for c in conditions if c["competitors"] == 0]
    names = list(idle[0]["measurements"])
    reference = {}
    for n in names:
        every = [m for c in idle for m in c["measurements"][n]]
        quiet = [m for m in every if m["all_fast"]] or every
        for s in STATISTICS:
            reference[(n, s)] = float(np.median([m[s] for m in quiet]))
    levels = sorted({(c["competitors"], c["kind"]) for c in conditions})
    by_stat, errors_of = {}, {}
    for level in levels:
        label = "idle" if level[0] == 0 else f"{level[0]} {level[1]}"
        chosen = [c for c in conditions if (c["competitors"], c["kind"]) == level]
        for st in STATISTICS:
            errors = [m[st] / reference[(n, st)] - 1 for c in chosen for n in names for m in c["measurements"][n]]
            by_stat.setdefault(st, {})[label] = _quantiles(errors)
        errors_of[label] = [(m[CHOSEN] / reference[(n, CHOSEN)] - 1, m)
                            for c in chosen for n in names for m in c["measurements"][n]]
    rule = {}
    for probe in (True, False):
        for limit in SPREAD_LIMITS:
            row = {}
            for label, errs in errors_of.items():
                clean = [abs(e) for e, m in errs if not _flagged(m, limit, probe)]
                row[label] = {"flagged_pct": 100 * (1 - len(clean) / len(errs)),
                              "clean_worst_pct": 100 * max(clean) if clean else None,
                              "clean_over_20pct": int(sum(1 for e in clean if e > 0.2)),
                              "clean_over_10pct": int(sum(1 for e in clean if e > 0.1))}
            rule[f"spread>{limit}" + (" or slowed" if probe else "")] = row
    per_layer = {}
    for n in names:
        row = {"idle_us": 1e6 * reference[(n, CHOSEN)]}
        for level in levels:
            if level[0] == 0:
                continue
            label = f"{level[0]} {level[1]}"
            errs = [m[CHOSEN] / reference[(n, CHOSEN)] - 1 for c in conditions
                    if (c["competitors"], c["kind"]) == level for m in c["measurements"][n]]
            row[label] = {"median_pct": 100 * float(np.median(errs)), "worst_pct": 100 * float(np.max(np.abs(errs)))}
        per_layer[n] = row
    return {"statistics": by_stat, "rule": rule, "per_layer_chosen": per_layer}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true",
                        help="a quick check (8 s conditions, one cycle, small layers only)")
    parser.add_argument("--condition-s", type=float, default=None, help="seconds per condition (60; short: 8)")
    parser.add_argument("--repeats", type=int, default=None, help="repeats of the condition cycle (2; short: 1)")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per measurement (20, as estimator=graph)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per measurement (the timing core's)")
    parser.add_argument("--budget", type=float, default=1.0, help="time budget per measurement, s (1.0)")
    parser.add_argument("--kinds", default="spin,matmul", help="competitor kinds, comma-separated (spin,matmul)")
    parser.add_argument("--out", default=None, help="write the JSON here")
    args = parser.parse_args(argv)
    import nas_hw  # noqa: F401  (quiet nnabla import)
    import nnabla as nn
    from nnabla.ext_utils import get_extension_context

    from nas_hw.constants import TIMING_ROUNDS

    args.condition_s = args.condition_s or (8.0 if args.short else 60.0)
    args.repeats = args.repeats or (1 if args.short else 2)
    args.rounds = args.rounds or TIMING_ROUNDS
    kinds = [k for k in args.kinds.split(",") if k]
    nn.set_default_context(get_extension_context("cpu"))
    layers = make_layers(large=not args.short)
    cycle = [(0, None)] + [(n, k) for n in (1, 2) for k in kinds]
    order = []
    for i in range(args.repeats):
        order += cycle if i % 2 == 0 else [cycle[0]] + cycle[:0:-1]
    order.append((0, None))  # idle at both ends
    started = time.time()
    conditions = []
    for n, kind in order:
        conditions.append(run_condition(layers, n, kind, args))
        c = conditions[-1]
        print(f"  condition {n} {c['kind']:6s}: load1 {c['load1_start']:.2f} -> {c['load1_end']:.2f}, "
              f"{c['others_running_mean']:.2f} other runnable on average, {c['passes']} passes", flush=True)
    summary = summarise(conditions)
    doc = {
        "benchmark": "statistic", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/statistic.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "settings": vars(args), "order": [list(o) for o in order], "wall_s": time.time() - started,
        "chosen": CHOSEN, "summary": summary,
        "conditions": [{k: v for k, v in c.items() if k != "measurements"} for c in conditions],
    }
    labels = [lb for lb in next(iter(summary["statistics"].values()))]
    print(f"\n|value/idle - 1| in %, median / p95 / worst over layers and measurements "
          f"({args.runs} runs in {args.rounds} rounds)")
    print(f"{'statistic':26s} " + " ".join(f"{lb:>22s}" for lb in labels))
    for st in STATISTICS:
        cells = [f"{summary['statistics'][st][lb]['median_pct']:5.1f}/{summary['statistics'][st][lb]['p95_pct']:6.1f}/"
                 f"{summary['statistics'][st][lb]['worst_pct']:7.1f}" for lb in labels]
        print(f"{st:26s} " + " ".join(f"{c:>22s}" for c in cells))
    print(f"\ndisturbance rule on {CHOSEN} (one attempt): flagged % / worst clean error % / clean rows > 20% off")
    for limit, row in summary["rule"].items():
        print(f"  {limit:24s}: " + "  ".join(
            f"{lb}: {r['flagged_pct']:4.1f}/{(r['clean_worst_pct'] or 0):5.1f}/{r['clean_over_20pct']}"
            for lb, r in row.items()))
    print("load1 per condition:", [(c["competitors"], c["kind"], round(c["load1_start"], 2), round(c["load1_end"], 2))
                                  for c in conditions])
    print(f"wall time {doc['wall_s']:.0f} s")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(doc, f, indent=1)
        print("wrote", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
