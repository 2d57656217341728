"""Which per-layer statistic stays true on a busy machine? (the choice behind nas_hw's robust statistic)

Times a set of nnabla functions typical of NAS spaces (depthwise and pointwise convolutions,
batch normalisation, activations, an affine layer) alone, as the layer-based estimators do, under
three conditions that this script creates itself: no competing process, one and two CPU-bound
competing processes (each a busy Python loop, started and stopped here, bounded in time). The
conditions are interleaved and repeated (idle, 1, 2, idle, 2, 1, ...), and every layer is
measured in ``--rounds`` interleaved rounds of ``--runs`` runs per condition.

For each candidate statistic it reports, over layers and repetitions, how far the loaded value
lands from the idle value of the same layer (``|loaded/idle - 1|``): the median and the worst.
A statistic fit to be stored as the truth of a layer keeps both small under load.

    python benchmarks/statistic.py                                  # a few seconds
    python benchmarks/statistic.py --repeats 6 --competitor matmul --out benchmarks/results/statistic.json
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

STATISTICS = ("mean", "trimmed_mean_10", "median", "p20", "p10", "min",
              "median_of_round_medians", "median_of_round_mins", "contiguous_mean", "contiguous_median")


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


def make_layers():
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
    layers = []
    for name, fn, shape in specs:
        x = nn.Variable(shape, need_grad=False)
        x.d = rng.randn(*shape)
        with nn.auto_forward(False):
            y = fn(x)
        y.forward()
        layers.append((name, y))
    return layers


def timed_runs(y, n):
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        y.forward(clear_no_need_grad=True)
        out.append(time.perf_counter() - t0)
    return out


def statistics(rounds):
    """Every candidate statistic of one layer's runs, given as a list of rounds (lists of s)."""
    runs = np.concatenate([np.asarray(r) for r in rounds])
    k = int(0.1 * len(runs))
    ordered = np.sort(runs)
    first = np.asarray(rounds[0])
    return {
        "mean": float(runs.mean()),
        "trimmed_mean_10": float(ordered[k:len(ordered) - k].mean()),
        "median": float(np.median(runs)),
        "p20": float(np.percentile(runs, 20)),
        "p10": float(np.percentile(runs, 10)),
        "min": float(runs.min()),
        "median_of_round_medians": float(np.median([np.median(r) for r in rounds])),
        "median_of_round_mins": float(np.median([np.min(r) for r in rounds])),
        # one contiguous block of runs, as a layer was measured before (n_run runs in a row)
        "contiguous_mean": float(first.mean()),
        "contiguous_median": float(np.median(first)),
    }


def measure(layers, rounds, runs, warmup=5):
    for _, y in layers:
        timed_runs(y, warmup)
    per_layer = {name: [] for name, _ in layers}
    for _ in range(rounds):  # interleaved: every layer once per round
        for name, y in layers:
            per_layer[name].append(timed_runs(y, runs))
    return {name: statistics(r) for name, r in per_layer.items()}


def run_condition(layers, n_competitors, rounds, runs, kind):
    stop_at = time.time() + 120
    procs = [mp.Process(target=burn, args=(stop_at, kind), daemon=True) for _ in range(n_competitors)]
    for p in procs:
        p.start()
    if procs:
        time.sleep(0.3)
    load_before = os.getloadavg()[0]
    try:
        result = measure(layers, rounds, runs)
    finally:
        for p in procs:
            p.terminate()
            p.join()
    return {"competitors": n_competitors, "kind": kind, "loadavg_1min": [load_before, os.getloadavg()[0]],
            "layers": result}


def summarise(conditions):
    """Per statistic and load level: median and worst |loaded/idle - 1| over layers and repeats,
    each loaded condition compared with the mean of the idle conditions."""
    idle = [c for c in conditions if c["competitors"] == 0]
    names = list(idle[0]["layers"])
    reference = {(n, s): float(np.mean([c["layers"][n][s] for c in idle])) for n in names for s in STATISTICS}
    out = {}
    for level in sorted({c["competitors"] for c in conditions}):
        for st in STATISTICS:
            errors = [abs(c["layers"][n][st] / reference[(n, st)] - 1)
                      for c in conditions if c["competitors"] == level for n in names]
            out.setdefault(st, {})[str(level)] = {"median_pct": 100 * float(np.median(errors)),
                                                  "worst_pct": 100 * float(np.max(errors))}
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per condition (5)")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per round (20)")
    parser.add_argument("--repeats", type=int, default=2, help="repeats of the idle/1/2 cycle (2)")
    parser.add_argument("--competitor", choices=("spin", "matmul"), default="spin",
                        help="what a competing process runs (spin: a busy loop; matmul: numpy matrix products)")
    parser.add_argument("--out", default=None, help="write the JSON here")
    args = parser.parse_args(argv)
    import nnabla as nn
    from nnabla.ext_utils import get_extension_context

    nn.set_default_context(get_extension_context("cpu"))
    layers = make_layers()
    order = []
    for i in range(args.repeats):
        order += [0, 1, 2] if i % 2 == 0 else [2, 1, 0]
    started = time.time()
    conditions = [run_condition(layers, k, args.rounds, args.runs, args.competitor) for k in order]
    summary = summarise(conditions)
    doc = {
        "benchmark": "statistic", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/statistic.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "settings": vars(args), "order": order, "wall_s": time.time() - started,
        "summary": summary, "conditions": conditions,
    }
    print(f"{'statistic':26s} " + " ".join(f"{'load ' + k + ': median / worst':>26s}" for k in ("1", "2")))
    for st in STATISTICS:
        cells = [f"{summary[st][k]['median_pct']:9.1f}% / {summary[st][k]['worst_pct']:7.1f}%" for k in ("1", "2")]
        print(f"{st:26s} " + " ".join(f"{c:>26s}" for c in cells))
    print("loadavg (1 min) per condition:", [round(c["loadavg_1min"][0], 2) for c in conditions])
    if args.out:
        with open(args.out, "w") as f:
            json.dump(doc, f, indent=1)
        print("wrote", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
