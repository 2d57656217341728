"""Cold profiling and cached-query time: nas_hw's layer-based estimators vs nnabla_nas 0.15's.

Both sides measure the same networks in one run, rounds interleaved, with the same per-layer
settings (n_run, n_warmup, a time budget large enough that neither stops early). Reported
figures are medians over rounds; ratios are nnabla_nas / nas_hw (> 1: nas_hw is faster).

    .venv/bin/python benchmarks/estimators.py [--rounds 5] [--queries 50] [--out benchmarks/results/estimators.json]

Cached query, two cases:
  same graph   get_estimation on the very graph / model state just estimated;
  fresh graph  the graph is rebuilt (same architecture) before every query, as a search loop
               does each step; the rebuild itself is not timed.
"""
import argparse
import json
import logging
import platform
import statistics
import sys
import time
from datetime import datetime, timezone

import nnabla as nn
from nnabla.logger import logger as nnabla_logger

from nas_hw import LatencyCache, LatencyEstimator, LatencyGraphEstimator
from nas_hw.measure.device import fingerprint
from nas_hw.search.spaces import DartsSpace, MobileNetSpace

nnabla_logger.setLevel(logging.ERROR)

NETWORKS = {
    # A ProxylessNAS/MobileNetV2-style sampled subnetwork and a DARTS-style cell network.
    "mobilenet-32": lambda: (MobileNetSpace(in_channels=3, stem_channels=16, stage_channels=(16, 24, 32),
                                            stage_blocks=(2, 3, 3), stage_strides=(1, 2, 2), mode="sample",
                                            seed=3), (1, 3, 32, 32)),
    "darts-32": lambda: (DartsSpace(in_channels=3, channels=8, n_cells=3, n_nodes=3, reduction_cells=(1,),
                                    mode="sample", seed=3), (1, 3, 32, 32)),
}


def build(name):
    net, shape = NETWORKS[name]()
    net.apply(training=False)
    out = net(nn.Variable(shape))
    return net, out, shape


def fresh_graph(net, shape):
    """Rebuilds the graph of the same architecture (sampling MixedOps keep their choice)."""
    from nas_hw.nas.choices import current_choices, find_choice_points
    from nas_hw.nas.choices import fixed_choices
    points = find_choice_points(net, require_shapes=False)
    with fixed_choices(points, current_choices(points)):
        return net(nn.Variable(shape))


def timed(fn):
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def run(rounds, queries, settings):
    import nnabla_nas.utils.estimator.latency as nl  # the part of nnabla_nas 0.15 that imports

    results = {}
    for name in NETWORKS:
        rows = {k: [] for k in ("cold_nas_hw_graph", "cold_nnabla_nas_graph", "cold_nas_hw_module",
                                "cold_nnabla_nas_module", "same_nas_hw_graph", "same_nnabla_nas_graph",
                                "same_nas_hw_module", "same_nnabla_nas_module", "fresh_nas_hw_graph",
                                "fresh_nnabla_nas_graph", "fresh_nas_hw_module", "fresh_nnabla_nas_module")}
        layers = {}
        for r in range(rounds):
            net, out, shape = build(name)
            ests = {
                "nas_hw_graph": LatencyGraphEstimator(cache=LatencyCache(":memory:"), **settings),
                "nnabla_nas_graph": nl.LatencyGraphEstimator(**settings),
                "nas_hw_module": LatencyEstimator(cache=LatencyCache(":memory:"), **settings),
                "nnabla_nas_module": nl.LatencyEstimator(**settings),
            }
            order = list(ests) if r % 2 == 0 else list(reversed(ests))  # interleave, alternate order
            for key in order:
                arg = out if key.endswith("graph") else net
                dt, value = timed(lambda: ests[key].get_estimation(arg))
                rows[f"cold_{key}"].append(dt)
                layers[key] = value
            for key in order:
                arg = out if key.endswith("graph") else net
                samples = [timed(lambda: ests[key].get_estimation(arg))[0] for _ in range(queries)]
                rows[f"same_{key}"].append(statistics.median(samples))
            for key in order:
                samples = []
                for _ in range(queries):
                    new_out = fresh_graph(net, shape)
                    arg = new_out if key.endswith("graph") else net
                    samples.append(timed(lambda: ests[key].get_estimation(arg))[0])
                rows[f"fresh_{key}"].append(statistics.median(samples))
            n_layers = {
                "nas_hw_graph": ests["nas_hw_graph"].cache.measurements,
                "nas_hw_module": ests["nas_hw_module"].cache.measurements,
                "nnabla_nas_graph": len(ests["nnabla_nas_graph"].memo),
                "nnabla_nas_module": sum(len(v) for v in ests["nnabla_nas_module"].memo.values()),
            }
        med = {k: statistics.median(v) for k, v in rows.items()}
        ratios = {}
        for case in ("cold", "same", "fresh"):
            for kind in ("graph", "module"):
                ratios[f"{case}_{kind}"] = med[f"{case}_nnabla_nas_{kind}"] / med[f"{case}_nas_hw_{kind}"]
        results[name] = {"median_s": med, "ratio_nnabla_nas_over_nas_hw": ratios,
                         "distinct_layers_measured": n_layers, "last_estimates_ms": layers}
    return results


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--queries", type=int, default=50)
    p.add_argument("--n-run", type=int, default=20)
    p.add_argument("--n-warmup", type=int, default=5)
    p.add_argument("--out", default="benchmarks/results/estimators.json")
    args = p.parse_args(argv)
    settings = dict(device_id=0, ext_name="cpu", n_run=args.n_run, n_warmup=args.n_warmup,
                    max_measure_execution_time=100, outlier=0.0, time_scale="m")
    results = run(args.rounds, args.queries, settings)
    doc = {"command": "python benchmarks/estimators.py " + " ".join(argv or sys.argv[1:]),
           "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": fingerprint("cpu").key, "python": platform.python_version(),
           "settings": settings, "rounds": args.rounds, "queries": args.queries, "results": results}
    with open(args.out, "w") as fh:
        json.dump(doc, fh, indent=1)
    print(f"{'network':14s} {'case':14s} {'nas_hw ms':>10s} {'nnabla_nas ms':>14s} {'ratio':>7s}")
    for name, res in results.items():
        med = res["median_s"]
        for case in ("cold", "same", "fresh"):
            for kind in ("graph", "module"):
                a, b = med[f"{case}_nas_hw_{kind}"] * 1e3, med[f"{case}_nnabla_nas_{kind}"] * 1e3
                print(f"{name:14s} {case + ' ' + kind:14s} {a:10.3f} {b:14.3f} {b / a:7.1f}x")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
