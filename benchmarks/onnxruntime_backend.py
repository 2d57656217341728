"""ONNX Runtime backend (named so as not to shadow the onnxruntime package when run as a script):
a layer-based sum against the whole exported network.

Sampled subnetworks of nnabla_nas's real SearchNets (MobileNetV2; DARTS, whose fixed 8x8 final
pooling admits only 32x32 inputs), exported to ONNX and run on ONNX Runtime
(CPUExecutionProvider, 1 intra-op thread, optimization level 'all' unless told otherwise):

  true     the whole exported network: the median of its runs, in --rounds rounds interleaved
           over the architectures (the figure used is the median over rounds)
  naive    the sum of every nnabla function timed alone on ONNX Runtime (backend fuse=False)
  fused    the sum of the runtime's fused kernels (units read from its optimized graph), each
           timed alone (the onnxruntime backend as the layer-based estimators use it)
  +cal     calibrated: true ~ scale*raw + per_layer*n_units + const fitted on the first
           --calibrate architectures (nas_hw's Calibrator default: 5), like a user would

Errors are on the other (held-out) architectures: MAPE (%) and Kendall's tau against true. The
noise floor is the MAPE between two rounds of the true measurement itself (mean over pairs of
rounds): no estimate can be expected to agree with a measurement better than the measurement
agrees with itself. Distinct units are timed once each, fused and naive ones shuffled together
so both see the same load. The load average is recorded at every phase.

Everything is computed twice, from each measurement's median and from its minimum. On a loaded
machine a whole network that runs for milliseconds is preempted within most runs (the scheduler
hands out slices of milliseconds), a short unit rarely is: the medians then compare a disturbed
whole with undisturbed parts, the minima compare the machine's undisturbed speed on both sides.

    .venv/bin/python benchmarks/onnxruntime_backend.py                      # the full run (about 30-60 min)
    .venv/bin/python benchmarks/onnxruntime_backend.py --quick              # a short run proving it works
    .venv/bin/python benchmarks/onnxruntime_backend.py --nets mobilenet-32 --samples 12
"""
import argparse
import itertools
import json
import logging
import os
import platform
import random
import statistics
import sys
import time
from datetime import datetime, timezone

import nnabla as nn
import numpy as np
from nnabla.logger import logger as nnabla_logger

import nas_hw  # noqa: F401  (lets nnabla_nas.contrib import from the PyPI wheel)
from nas_hw import nnabla_nas_compat as nnas
from nas_hw.estimators.calibration import fit_calibration
from nas_hw.measure.backends import make_backend
from nas_hw.measure.backends.units import plan_units
from nas_hw.measure.graph import walk
from nas_hw.measure.timing import measure

nnabla_logger.setLevel(logging.ERROR)


def _mobilenet(size):
    from nnabla_nas.contrib.classification import mobilenet
    return mobilenet.SearchNet(num_classes=10 if size <= 64 else 1000, mode="sample")


def _darts(size):
    from nnabla_nas.contrib.classification import darts
    return darts.SearchNet(in_channels=3, init_channels=16, num_cells=8, num_classes=10, mode="sample")


STATS = ("median", "min")
NETS = {"mobilenet-32": (_mobilenet, 32), "mobilenet-224": (_mobilenet, 224), "darts-32": (_darts, 32)}


def load():
    return [round(x, 2) for x in os.getloadavg()]


def kendall_tau(a, b):
    """Kendall's tau-b of two equally long sequences."""
    conc = disc = ties_a = ties_b = 0
    for (a1, b1), (a2, b2) in itertools.combinations(zip(a, b), 2):
        da, db = np.sign(a1 - a2), np.sign(b1 - b2)
        if da == 0 and db == 0:
            continue
        if da == 0:
            ties_a += 1
        elif db == 0:
            ties_b += 1
        elif da == db:
            conc += 1
        else:
            disc += 1
    denom = ((conc + disc + ties_a) * (conc + disc + ties_b)) ** 0.5
    return float((conc - disc) / denom) if denom else float("nan")


def mape(pred, true):
    return float(np.mean(np.abs(np.asarray(pred) - np.asarray(true)) / np.asarray(true)) * 100)


def sample_archs(net, size, n, seed):
    """``n`` architectures of ``net`` (one candidate index per MixedOp), each built as a graph."""
    ops = [m for _, m in net.get_modules() if nnas.is_mixed_op(m)]
    rng = random.Random(seed)
    archs = []
    for _ in range(n):
        choice = [rng.randrange(len(nnas.candidates(m))) for m in ops]
        x = nn.Variable((1, 3, size, size))
        with nnas.fixed_choices(ops, choice), nn.auto_forward(False):
            y = net(x)
        archs.append({"choice": choice, "x": x, "y": y, "funcs": walk(y)[0]})
    return archs


def time_units(units, backends, settings, log):
    """Seconds per distinct unit signature (one copy's median), shuffled across both plans."""
    todo = {}
    for kind, plan in units.items():
        for u in plan:
            todo.setdefault(u.signature, (kind, u))
    order = list(todo.items())
    random.Random(0).shuffle(order)
    seconds = {}
    for k, (sig, (kind, u)) in enumerate(order):
        prepared = backends[kind].prepare_functions(list(u.funcs), list(u.inputs), list(u.outputs),
                                                    list(u.input_shapes))
        if prepared.noop:
            seconds[sig] = ({"median": 0.0, "min": 0.0}, True)
            continue
        stats = prepared.adjust(measure(prepared.run, **settings))
        seconds[sig] = ({"median": stats.median, "min": stats.min}, False)
        if k % 50 == 0:
            log(f"    unit {k}/{len(order)} load {load()}")
    return seconds


def run_net(name, args, log):
    builder, size = NETS[name]
    nn.clear_parameters()
    nn.seed(args.seed)
    net = builder(size)
    net.apply(training=False)
    archs = sample_archs(net, size, args.samples, args.seed)
    backends = {"fused": make_backend("onnxruntime", threads=args.threads, optimization=args.optimization),
                "naive": make_backend("onnxruntime", threads=args.threads, optimization=args.optimization,
                                      fuse=False)}
    loads = {"start": load()}
    t0 = time.time()
    for a in archs:
        a["units"] = {kind: plan_units(b, a["funcs"], [a["x"]], [a["y"]]) for kind, b in backends.items()}
    log(f"  {name}: {len(archs)} architectures planned in {time.time() - t0:.1f} s")
    unit_settings = dict(n_run=args.n_run, n_warmup=args.n_warmup, max_measure_execution_time=args.budget)
    all_units = {kind: [u for a in archs for u in a["units"][kind]] for kind in backends}
    seconds = time_units(all_units, backends, unit_settings, log)
    loads["after_units"] = load()
    log(f"  {name}: {len(seconds)} distinct units timed ({time.time() - t0:.0f} s), load {loads['after_units']}")
    runs = [backends["fused"].prepare_network(a["y"], [a["x"]]) for a in archs]
    rounds = [{"median": [], "min": []} for _ in archs]
    net_settings = dict(n_run=args.n_run_net, n_warmup=args.n_warmup, max_measure_execution_time=args.budget_net)
    for r in range(args.rounds):
        for i, prepared in enumerate(runs):
            stats = measure(prepared.run, **net_settings)
            rounds[i]["median"].append(stats.median)
            rounds[i]["min"].append(stats.min)
        log(f"  {name}: round {r + 1}/{args.rounds} of whole networks, load {load()}")
    loads["end"] = load()
    out = {"net": name, "input": [1, 3, size, size], "loads": loads, "seconds": round(time.time() - t0, 1),
           "fingerprint": backends["fused"].fingerprint.key, "rows": {}, "metrics": {}}
    for stat in STATS:
        rows = []
        for a, times in zip(archs, rounds):
            row = {"choice": a["choice"], "true_ms": statistics.median(times[stat]) * 1e3,
                   "rounds_ms": [t * 1e3 for t in times[stat]], "n_functions": len(a["funcs"])}
            for kind in backends:
                parts = [seconds[u.signature] for u in a["units"][kind]]
                row[f"{kind}_ms"] = sum(s[stat] for s, _ in parts) * 1e3
                row[f"{kind}_units"] = sum(1 for _, noop in parts if not noop)
            rows.append(row)
        out["rows"][stat] = rows
        out["metrics"][stat] = metrics(rows, args.calibrate)
    return out


def metrics(rows, n_cal):
    cal, test = rows[:n_cal], rows[n_cal:] or rows
    true = [r["true_ms"] for r in test]
    out = {"n_calibration": len(cal), "n_test": len(test)}
    pairs = [(i, j) for i in range(len(test[0]["rounds_ms"])) for j in range(i)]
    out["noise_floor_mape"] = (statistics.mean(mape([r["rounds_ms"][i] for r in test], [r["rounds_ms"][j] for r in test])
                                               for i, j in pairs) if pairs else float("nan"))
    for kind in ("naive", "fused"):
        raw = [r[f"{kind}_ms"] for r in test]
        out[kind] = {"mape": mape(raw, true), "tau": kendall_tau(raw, true),
                     "sum_over_true": float(np.median(np.asarray(raw) / np.asarray(true)))}
        c = fit_calibration([r[f"{kind}_ms"] for r in cal], [r[f"{kind}_units"] for r in cal],
                            [r["true_ms"] for r in cal], estimator=kind)
        pred = [c.apply(r[f"{kind}_ms"], r[f"{kind}_units"]) for r in test]
        out[kind + "+cal"] = {"mape": mape(pred, true), "tau": kendall_tau(pred, true),
                              "scale": c.scale, "per_layer": c.per_layer, "const": c.const}
    return out


def table(results):
    lines = ["| network | statistic | archs (cal/test) | noise floor MAPE % | estimate | MAPE % | Kendall tau | sum/true |",
             "|---|---|---|---:|---|---:|---:|---:|"]
    for res in results:
        for stat in STATS:
            m = res["metrics"][stat]
            for kind in ("naive", "naive+cal", "fused", "fused+cal"):
                ratio = m[kind].get("sum_over_true")
                lines.append(f"| {res['net']} | {stat} | {m['n_calibration']}/{m['n_test']} | {m['noise_floor_mape']:.1f} | "
                             f"{kind} | {m[kind]['mape']:.1f} | {m[kind]['tau']:.2f} | "
                             f"{'' if ratio is None else f'{ratio:.2f}'} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nets", default=",".join(NETS), help=f"comma-separated, from {list(NETS)}")
    p.add_argument("--samples", type=int, default=15, help="architectures per network")
    p.add_argument("--calibrate", type=int, default=5, help="architectures the calibration is fitted on")
    p.add_argument("--rounds", type=int, default=3, help="rounds of whole-network measurement")
    p.add_argument("--n-run", type=int, default=100)
    p.add_argument("--n-run-net", type=int, default=100)
    p.add_argument("--n-warmup", type=int, default=10)
    p.add_argument("--budget", type=float, default=1.0, help="seconds per unit measurement")
    p.add_argument("--budget-net", type=float, default=3.0, help="seconds per whole-network measurement")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--optimization", default="all")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="mobilenet-32, 6 architectures, 2 rounds, short timings")
    p.add_argument("--out", default=None, help="JSON output (default benchmarks/results/onnxruntime_backend[_quick].json)")
    args = p.parse_args(argv)
    if args.quick:
        args.nets, args.samples, args.calibrate, args.rounds = "mobilenet-32", 6, 3, 2
        args.n_run, args.n_run_net, args.budget, args.budget_net = 20, 30, 0.2, 0.5
    out = args.out or os.path.join(os.path.dirname(__file__), "results",
                                   "onnxruntime_backend_quick.json" if args.quick else "onnxruntime_backend.json")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    results = []
    for name in args.nets.split(","):
        log(f"{name} (load {load()})")
        results.append(run_net(name, args, log))
    import onnxruntime

    report = {"command": " ".join([os.path.basename(sys.executable), "benchmarks/onnxruntime_backend.py"] + (argv or sys.argv[1:])),
              "started": started, "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                          "python": platform.python_version(), "onnxruntime": onnxruntime.__version__,
                          "nnabla": nn.__version__},
              "settings": {k: v for k, v in vars(args).items() if k != "out"}, "results": results}
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(report, f, indent=1)
    print(table(results))
    for res in results:
        print(f"{res['net']}: load {res['loads']}, {res['seconds']} s")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
