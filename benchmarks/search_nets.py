"""The search-loop query on the real nnabla_nas SearchNets: nas_hw vs nnabla_nas 0.15.

Used by ``benchmarks/estimators.py`` (run that). Four parts, each measured side by side:

- ``query``: a new random architecture per query (never one seen before), every layer already
  measured; the four estimators (nas_hw / nnabla_nas x module / graph) are timed on the same
  architecture, in rotating order, each graph estimator on a graph of its own built just before
  (not timed). Python's garbage collector runs, untimed, before every timed call, so that one
  side is not charged for collecting what building the graphs left behind.
- ``memory``: resident memory while estimating distinct graphs at 224x224, each run forward
  once before it is estimated (as a search step does); one fresh process per estimator.
- ``table``: ``CandidateTable.sampled()`` on the real MobileNetV2 SearchNet.
- ``seed``: the seed's example verbatim (MobileNetV2 SearchNet built once, training mode): the
  module estimate against the graph estimate of the training-mode graph and of the same
  architecture built in inference mode, for both packages.
"""
import gc
import json
import logging
import os
import statistics
import subprocess
import sys
import time

import nnabla as nn
import numpy as np
from nnabla.logger import logger as nnabla_logger

import nas_hw  # noqa: F401  (registers the OFA placeholder: the wheel's SearchNets import)
from nas_hw import CandidateTable, LatencyCache, LatencyEstimator, LatencyGraphEstimator
from nas_hw.measure.graph import walk_inputs
from nas_hw.nas.choices import current_choices, find_choice_points, fixed_choices

nnabla_logger.setLevel(logging.ERROR)
logging.getLogger("nnabla_nas").setLevel(logging.ERROR)

#: name -> (SearchNet builder, input shape). nnabla_nas's DARTS SearchNet takes 32x32 only (its
#: final AvgPool(8) and Linear(last_channels) are sized for CIFAR), so 224x224 is MobileNetV2's.
NETWORKS = {
    "mobilenet-32": ("mobilenet", (1, 3, 32, 32)),
    "darts-32": ("darts", (1, 3, 32, 32)),
    "mobilenet-224": ("mobilenet", (1, 3, 224, 224)),
}
SIDES = ("nas_hw_module", "nnabla_nas_module", "nas_hw_graph", "nnabla_nas_graph")
#: Not an estimator: walking a fresh graph and reading each function's inputs, which any graph
#: estimator must do (nnabla builds a new Python wrapper, with its argument dict, for every
#: ``Variable.parent``); the floor under the graph estimator's query.
WALK = "nas_hw_walk_only"


def build_net(kind):
    if kind == "mobilenet":
        from nnabla_nas.contrib.classification.mobilenet import SearchNet
        return SearchNet(mode="sample")  # the seed's network: ImageNet head, default settings
    from nnabla_nas.contrib.classification.darts import SearchNet
    return SearchNet(in_channels=3, init_channels=16, num_cells=8, num_classes=10, mode="sample")


def load1():
    return round(os.getloadavg()[0], 2)


def set_architecture(net, points, choices, shape, n_graphs):
    """Makes ``choices`` the model's current architecture and builds ``n_graphs`` graphs of it,
    as a sampling MixedOp does: nnabla_nas's own setter first (it flags the chosen candidates,
    which its LatencyEstimator reads and which decides whether their weights need a gradient),
    then the forward that builds the graph."""
    for cp, c in zip(points, choices):
        cp.mixedop.active_index = int(c)
    with fixed_choices(points, choices), nn.auto_forward(False):
        return [net(nn.Variable(shape)) for _ in range(n_graphs)]


def estimators(settings, nl):
    cache = LatencyCache(":memory:")
    return {"nas_hw_module": LatencyEstimator(cache=cache, **settings),
            "nnabla_nas_module": nl.LatencyEstimator(**settings),
            "nas_hw_graph": LatencyGraphEstimator(cache=cache, **settings),
            "nnabla_nas_graph": nl.LatencyGraphEstimator(**settings)}


def run_query(name, n_queries, settings, seed=0):
    """Medians (wall and CPU seconds) of each side's query on new random architectures."""
    import nnabla_nas.utils.estimator.latency as nl

    kind, shape = NETWORKS[name]
    net = build_net(kind)
    net.apply(training=False)
    with nn.auto_forward(False):
        net(nn.Variable(shape))
    points = find_choice_points(net)
    sizes = [cp.n_candidates for cp in points]
    ests = estimators(settings, nl)
    loads = [load1()]
    t0 = time.perf_counter()
    # Warm-up: every candidate of every choice point is measured by every side (and nas_hw's
    # module estimator builds its plan on its first query).
    plan_s = None
    for c in range(max(sizes)):
        choices = [min(c, n - 1) for n in sizes]
        graphs = set_architecture(net, points, choices, shape, 2)
        for key, est in ests.items():
            arg = graphs.pop() if key.endswith("graph") else net
            t = time.perf_counter()
            est.get_estimation(arg)
            if key == "nas_hw_module" and plan_s is None:
                plan_s = time.perf_counter() - t
    warm_s = time.perf_counter() - t0
    rng = np.random.RandomState(seed)
    wall = {k: [] for k in SIDES + (WALK,)}
    cpu = {k: [] for k in SIDES + (WALK,)}
    seen = set()
    for q in range(n_queries):
        choices = tuple(int(rng.randint(n)) for n in sizes)
        while choices in seen:
            choices = tuple(int(rng.randint(n)) for n in sizes)
        seen.add(choices)
        graphs = set_architecture(net, points, choices, shape, 3)
        order = (SIDES + (WALK,))[q % 5:] + (SIDES + (WALK,))[:q % 5]
        for key in order:
            arg = graphs.pop() if key.endswith(("graph", "only")) else net
            fn = walk_inputs if key == WALK else ests[key].get_estimation
            gc.collect()
            t, c = time.perf_counter(), time.process_time()
            fn(arg)
            wall[key].append(time.perf_counter() - t)
            cpu[key].append(time.process_time() - c)
        del graphs
        if q % 10 == 0:
            loads.append(load1())
    loads.append(load1())
    med = {k: statistics.median(v) for k, v in wall.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    return {"network": name, "input_shape": list(shape), "modules": len(list(net.get_modules())),
            "choice_points": len(points), "queries": n_queries,
            "median_wall_s": med, "median_cpu_s": med_cpu,
            "speedup_module": med["nnabla_nas_module"] / med["nas_hw_module"],
            "speedup_graph": med["nnabla_nas_graph"] / med["nas_hw_graph"],
            "speedup_module_cpu": med_cpu["nnabla_nas_module"] / med_cpu["nas_hw_module"],
            "speedup_graph_cpu": med_cpu["nnabla_nas_graph"] / med_cpu["nas_hw_graph"],
            "speedup_walk_only": med["nnabla_nas_graph"] / med[WALK],
            "nas_hw_plan_build_s": plan_s, "warm_up_s": warm_s, "load1_seen": loads}


# -- memory -----------------------------------------------------------------------------

def _rss_mb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def memory_child(side, n_graphs, settings):
    """Runs in its own process: estimates ``n_graphs`` distinct 224x224 graphs of the
    MobileNetV2 SearchNet, each run forward once first; prints the RSS after each (JSON)."""
    import nnabla_nas.utils.estimator.latency as nl

    net = build_net("mobilenet")
    net.apply(training=False)
    shape = NETWORKS["mobilenet-224"][1]
    with nn.auto_forward(False):
        net(nn.Variable(shape))
    points = find_choice_points(net)
    est = {"nas_hw_graph": lambda: LatencyGraphEstimator(cache=":memory:", **settings),
           "nnabla_nas_graph": lambda: nl.LatencyGraphEstimator(**settings),
           "nas_hw_module": lambda: LatencyEstimator(cache=":memory:", **settings)}[side]()
    rng = np.random.RandomState(1)
    rss = []
    for _ in range(n_graphs):
        choices = [int(rng.randint(cp.n_candidates)) for cp in points]
        out = set_architecture(net, points, choices, shape, 1)[0]
        out.forward(clear_no_need_grad=False)  # the search step's forward: buffers stay with the graph
        est.get_estimation(net if side.endswith("module") else out)
        del out
        rss.append(_rss_mb())
    print(json.dumps(rss))


def run_memory(n_graphs, settings):
    out = {}
    for side in ("nas_hw_graph", "nnabla_nas_graph", "nas_hw_module"):
        before = load1()
        cmd = [sys.executable, os.path.abspath(__file__), "--memory-child", side, str(n_graphs), json.dumps(settings)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rss = json.loads(done.stdout.strip().splitlines()[-1])
        out[side] = {"rss_mb_after_5th": rss[4], "rss_mb_after_last": rss[-1], "growth_mb": rss[-1] - rss[4],
                     "n_graphs": n_graphs, "rss_mb_every_10th": rss[9::10], "load1_seen": [before, load1()]}
    return out


# -- table ------------------------------------------------------------------------------

def run_table(settings, n_calls=20000):
    net = build_net("mobilenet")
    net.apply(training=False)
    est = LatencyGraphEstimator(cache=":memory:", **settings)
    t = time.perf_counter()
    table = CandidateTable.build(net, est, input_shape=(1, 3, 32, 32), progress=False)
    build_s = time.perf_counter() - t
    with nn.auto_forward(False):
        net(nn.Variable((1, 3, 32, 32)))  # a sampled subnetwork: every MixedOp has a choice
    per_call = []
    for _ in range(7):
        t = time.perf_counter()
        for _ in range(n_calls // 7):
            table.sampled()
        per_call.append((time.perf_counter() - t) / (n_calls // 7))
    return {"network": "mobilenet-32", "choice_points": len(table.names), "build_s": build_s,
            "sampled_median_us": statistics.median(per_call) * 1e6, "load1": load1()}


# -- the seed's example -----------------------------------------------------------------

def run_seed(rounds, settings, sizes=(32, 96)):
    """The seed's example verbatim on the real MobileNetV2 SearchNet (training mode), plus the
    graph estimate of the same architecture built in inference mode."""
    import nnabla_nas.utils.estimator.latency as nl
    from nnabla_nas.contrib.classification.mobilenet import SearchNet

    net = SearchNet()
    out = {}
    for size in sizes:
        train_out = net(nn.Variable((1, 3, size, size)))
        points = find_choice_points(net)
        net.apply(training=False)
        with fixed_choices(points, current_choices(points)):
            infer_out = net(nn.Variable((1, 3, size, size)))
        net.apply(training=True)
        rows = {k: [] for k in ("nas_hw_module", "nas_hw_graph_training_graph", "nas_hw_graph_inference_graph",
                                "nnabla_nas_module", "nnabla_nas_graph_training_graph")}
        loads = [load1()]
        for r in range(rounds):
            todo = {
                "nas_hw_module": lambda: LatencyEstimator(cache=":memory:", **settings).get_estimation(net),
                "nas_hw_graph_training_graph": lambda: LatencyGraphEstimator(cache=":memory:", **settings).get_estimation(train_out),
                "nas_hw_graph_inference_graph": lambda: LatencyGraphEstimator(cache=":memory:", **settings).get_estimation(infer_out),
                "nnabla_nas_module": lambda: nl.LatencyEstimator(**settings).get_estimation(net),
                "nnabla_nas_graph_training_graph": lambda: nl.LatencyGraphEstimator(**settings).get_estimation(train_out),
            }
            keys = list(todo) if r % 2 == 0 else list(reversed(list(todo)))
            for k in keys:
                rows[k].append(float(todo[k]()))
            loads.append(load1())
        med = {k: statistics.median(v) for k, v in rows.items()}

        def diff(a, b):
            return 100.0 * abs(med[a] - med[b]) / max(med[a], med[b])
        out[f"1x3x{size}x{size}"] = {
            "median_ms": med, "rounds": rounds, "load1_seen": loads,
            "diff_pct_nas_hw_module_vs_training_graph": diff("nas_hw_module", "nas_hw_graph_training_graph"),
            "diff_pct_nas_hw_module_vs_inference_graph": diff("nas_hw_module", "nas_hw_graph_inference_graph"),
            "diff_pct_nnabla_nas_module_vs_training_graph": diff("nnabla_nas_module", "nnabla_nas_graph_training_graph"),
        }
    return out


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--memory-child":
    memory_child(sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4]))
