"""nas_hw's layer-based estimators vs nnabla_nas 0.15's, side by side in one run.

Part ``spaces`` (nas_hw's own small spaces): cold profiling and cached-query time. Both sides
measure the same networks, rounds interleaved, with the same per-layer settings (n_run,
n_warmup, a time budget large enough that neither stops early). Cached query, two cases:
  same graph   get_estimation on the very graph / model state just estimated;
  fresh graph  the graph is rebuilt (same architecture) before every query, as a search loop
               does each step; the rebuild itself is not timed.

Parts ``query``, ``memory``, ``table``, ``seed`` (the real nnabla_nas SearchNets, from the PyPI
wheel): see ``benchmarks/search_nets.py``.

Figures are medians; ratios are nnabla_nas / nas_hw (> 1: nas_hw is faster). The 1-minute load
average is recorded along the way: ratios measured interleaved hold under load, absolute times
do not.

    .venv/bin/python benchmarks/estimators.py                 # everything (about 30-60 min on 2 busy cores)
    .venv/bin/python benchmarks/estimators.py --short         # proves the script works (minutes; not figures)
    .venv/bin/python benchmarks/estimators.py --parts query,memory
"""
import argparse
import json
import logging
import os
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import search_nets  # noqa: E402  (benchmarks/search_nets.py)

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
    from nas_hw.nas.choices import current_choices, find_choice_points, fixed_choices
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


PARTS = ("spaces", "query", "memory", "table", "seed")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, from {PARTS}")
    p.add_argument("--short", action="store_true", help="a quick run that proves the script works (not figures)")
    p.add_argument("--rounds", type=int, default=5, help="spaces: rounds")
    p.add_argument("--queries", type=int, default=50, help="spaces: cached queries per round")
    p.add_argument("--n-run", type=int, default=20)
    p.add_argument("--n-warmup", type=int, default=5)
    p.add_argument("--search-queries", type=int, default=100, help="query: new architectures per network")
    p.add_argument("--memory-graphs", type=int, default=200, help="memory: distinct 224x224 graphs per side")
    p.add_argument("--seed-rounds", type=int, default=3, help="seed: rounds (fresh estimators each)")
    p.add_argument("--out", default="benchmarks/results/estimators.json")
    args = p.parse_args(argv)
    parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    unknown = [x for x in parts if x not in PARTS]
    if unknown:
        p.error(f"--parts: unknown {unknown}; allowed: {PARTS}")
    if args.short:
        args.rounds, args.queries, args.n_run, args.n_warmup = 1, 5, 3, 1
        args.search_queries, args.memory_graphs, args.seed_rounds = 8, 12, 1
    settings = dict(device_id=0, ext_name="cpu", n_run=args.n_run, n_warmup=args.n_warmup,
                    max_measure_execution_time=100, outlier=0.0, time_scale="m")
    # The search-loop parts time queries of layers already measured: a few runs per layer do.
    quick = dict(settings, n_run=3, n_warmup=1)
    seed_settings = dict(device_id=0, ext_name="cpu", outlier=0.05, time_scale="m", n_warmup=10,
                         max_measure_execution_time=500, n_run=10 if args.short else 100)
    doc = {"command": "python benchmarks/estimators.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": fingerprint("cpu").key, "python": platform.python_version(),
           "load1_at_start": os.getloadavg()[0], "short": args.short, "settings": settings}
    t0 = time.perf_counter()
    if "spaces" in parts:
        doc["spaces"] = {"rounds": args.rounds, "queries": args.queries,
                         "results": run(args.rounds, args.queries, settings)}
    if "query" in parts:
        doc["query"] = {"settings": quick, "results": [search_nets.run_query(name, args.search_queries, quick)
                                                        for name in search_nets.NETWORKS]}
    if "memory" in parts:
        doc["memory"] = search_nets.run_memory(args.memory_graphs, dict(quick, n_run=1, n_warmup=0))
    if "table" in parts:
        doc["table"] = search_nets.run_table(quick)
    if "seed" in parts:
        doc["seed"] = {"settings": seed_settings, "results": search_nets.run_seed(args.seed_rounds, seed_settings)}
    doc["load1_at_end"] = os.getloadavg()[0]
    doc["wall_s"] = time.perf_counter() - t0
    with open(args.out, "w") as fh:
        json.dump(doc, fh, indent=1)
    print(report(doc))
    print(f"written {args.out}")


def report(doc):
    """Markdown tables of what ``doc`` holds (what docs/benchmarks.md shows)."""
    lines = [f"{doc['command']} - {doc['date']} - load1 {doc['load1_at_start']:.2f} at start, "
             f"{doc['load1_at_end']:.2f} at end, {doc['wall_s'] / 60:.1f} min"]
    if "spaces" in doc:
        lines += ["", "| network | estimator | case | nas_hw ms | nnabla_nas ms | ratio |", "|---|---|---|---:|---:|---:|"]
        for name, res in doc["spaces"]["results"].items():
            med = res["median_s"]
            for case in ("cold", "same", "fresh"):
                for kind in ("graph", "module"):
                    a, b = med[f"{case}_nas_hw_{kind}"] * 1e3, med[f"{case}_nnabla_nas_{kind}"] * 1e3
                    lines.append(f"| {name} | {kind} | {case} | {a:.3f} | {b:.3f} | {b / a:.1f}x |")
    if "query" in doc:
        lines += ["", "| network | modules | estimator | nas_hw ms | nnabla_nas ms | nas_hw is (wall) | (CPU) | load1 seen |",
                  "|---|---:|---|---:|---:|---:|---:|---|"]
        for res in doc["query"]["results"]:
            med = res["median_wall_s"]
            for kind in ("module", "graph"):
                lines.append(f"| {res['network']} | {res['modules']} | {kind} | {med[f'nas_hw_{kind}'] * 1e3:.3f} | "
                             f"{med[f'nnabla_nas_{kind}'] * 1e3:.3f} | {res[f'speedup_{kind}']:.1f}x faster | "
                             f"{res[f'speedup_{kind}_cpu']:.1f}x | {min(res['load1_seen']):.1f}-{max(res['load1_seen']):.1f} |")
        lines.append("")
        lines.append("nas_hw module estimator, plan built once per space: " + ", ".join(
            f"{r['network']} {r['nas_hw_plan_build_s']:.2f} s" for r in doc["query"]["results"]))
        lines.append("Walking a fresh graph alone (the floor of any graph estimator's query): " + ", ".join(
            f"{r['network']} {r['median_wall_s']['nas_hw_walk_only'] * 1e3:.3f} ms "
            f"({r['speedup_walk_only']:.1f}x below nnabla_nas's whole query)" for r in doc["query"]["results"]))
    if "memory" in doc:
        lines += ["", "| estimator | graphs | RSS after 5th (MB) | RSS after last (MB) | growth (MB) | load1 |",
                  "|---|---:|---:|---:|---:|---|"]
        for side, m in doc["memory"].items():
            lines.append(f"| {side} | {m['n_graphs']} | {m['rss_mb_after_5th']:.0f} | {m['rss_mb_after_last']:.0f} | "
                         f"{m['growth_mb']:+.0f} | {m['load1_seen'][0]:.1f}-{m['load1_seen'][1]:.1f} |")
    if "table" in doc:
        t = doc["table"]
        lines += ["", f"CandidateTable.sampled() on {t['network']} ({t['choice_points']} choice points): "
                      f"{t['sampled_median_us']:.2f} us per call (load1 {t['load1']:.1f})"]
    if "seed" in doc:
        lines += ["", "| input | nas_hw module | nas_hw graph (training graph) | nas_hw graph (inference graph) | "
                      "nnabla_nas module | nnabla_nas graph (training graph) | module vs training graph | "
                      "module vs inference graph | nnabla_nas: module vs graph |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for size, r in doc["seed"]["results"].items():
            m = r["median_ms"]
            lines.append(f"| {size} | {m['nas_hw_module']:.3f} | {m['nas_hw_graph_training_graph']:.3f} | "
                         f"{m['nas_hw_graph_inference_graph']:.3f} | {m['nnabla_nas_module']:.3f} | "
                         f"{m['nnabla_nas_graph_training_graph']:.3f} | "
                         f"{r['diff_pct_nas_hw_module_vs_training_graph']:.1f} % | "
                         f"{r['diff_pct_nas_hw_module_vs_inference_graph']:.1f} % | "
                         f"{r['diff_pct_nnabla_nas_module_vs_training_graph']:.1f} % |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
