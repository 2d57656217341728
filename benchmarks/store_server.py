"""The latency store on a PostgreSQL server under several writers, and read side by side with
the SQLite file.

1. Fill: 8 processes on this machine estimate overlapping sets of networks (sampled MobileNet
   subnetworks, inputs 1x1x16x16 and 1x1x24x24, LatencyGraphEstimator) into one fresh server database, all
   starting at once, 3 times (a fresh database each time). Layer timing is replaced by a
   synthetic measurement keyed by the layer's signature (a sleep, then a fixed time: the store is
   what is measured here, not nnabla), taken through the store's own ``get_or_measure``. Reported:
   rows lost (layers the serial run stores that the parallel fill lacks), layers measured twice
   (measurements taken minus distinct layers), and whether every process's estimates equal those
   of a serial run (one process, every network, another fresh database).
2. Read: a ``CandidateTable`` build of a 20-choice-point MobileNet space with every row already
   stored, from the server and from an SQLite file holding the same rows (copied with
   ``nas-hw cache copy``'s function), fresh store and estimator each time, rounds interleaved
   (the order alternates), with the 1-minute load average before each build. Reported: medians
   and their ratio (goal: server within 2x of SQLite).

The server is a throw-away local one (tests/pg_server.py: initdb + pg_ctl in a temporary
directory, 127.0.0.1 only; as the ``postgres`` user when run as root).

    .venv/bin/python benchmarks/store_server.py [--repeats 3] [--procs 8] [--rounds 7]
    .venv/bin/python benchmarks/store_server.py --quick      # proves it works (1 fill, 2 rounds)
"""
import argparse
import hashlib
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

N_NETS = 12        # the pool of sampled networks
NETS_PER_PROC = 4  # process i estimates networks i .. i+3 (mod 12): every network by 2-4 processes


def synthetic_seconds(signature):
    """The synthetic time of a layer: fixed by its signature (10-1000 us)."""
    h = int.from_bytes(hashlib.sha256(signature.encode()).digest()[:4], "big")
    return 1e-5 * (1 + h % 100)


def synthetic_store(url, measure_s, log):
    """A server store whose measurements are synthetic (see :func:`synthetic_seconds`), taken
    through its own ``get_or_measure`` (lock, re-check, put); ``log`` gets each signature measured."""
    from nas_hw.measure.store import PostgresStore
    from nas_hw.measure.timing import TimingStats

    class SyntheticStore(PostgresStore):
        def get_or_measure(self, fingerprint, signature, measure_fn, *args, **kwargs):
            def fake():
                time.sleep(measure_s)
                log.append(signature)
                t = synthetic_seconds(signature)
                return TimingStats(t, t, 0.0, t, 3, 3), False
            return super().get_or_measure(fingerprint, signature, fake, *args, **kwargs)

    return SyntheticStore(url)


def build_net(seed):
    import nnabla as nn

    from nas_hw.search.spaces import MobileNetSpace

    nn.clear_parameters()
    net = MobileNetSpace(mode="sample", seed=seed, stage_channels=(8, 16, 16), stage_blocks=(2, 2, 2),
                         stage_strides=(1, 2, 1))
    net.apply(training=False)
    size = (16, 24)[seed % 2]  # two input sizes: more distinct layers
    return net(nn.Variable((1, 1, size, size)))


def worker(args):
    """One filling process: builds its networks, says ready, waits for 'go' on stdin, estimates."""
    import nas_hw  # noqa: F401  (quiet nnabla import)
    from nas_hw import LatencyGraphEstimator

    log = []
    store = synthetic_store(args.url, args.measure_s, log)
    outs = {seed: build_net(seed) for seed in args.nets}
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":  # the parent is gone
        return
    t0 = time.perf_counter()
    estimates = {}
    for seed, out in outs.items():
        est = LatencyGraphEstimator(device_id=0, ext_name="cpu", n_run=1, n_warmup=0, cache=store)
        estimates[str(seed)] = est.get_estimation(out)
    result = {"estimates": estimates, "measured": log, "seconds": time.perf_counter() - t0}
    store.close()
    print(json.dumps(result), flush=True)


def run_workers(url, nets_per_worker, measure_s):
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", "--url", url, "--measure-s", str(measure_s),
                               "--nets", *map(str, nets)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=ROOT) for nets in nets_per_worker]
    try:
        for p in procs:  # every process has imported nnabla and built its networks: start together
            line = p.stdout.readline().strip()
            if line != "ready":
                raise RuntimeError(f"worker failed to start: {line} {p.stderr.read()[-2000:]}")
        load = os.getloadavg()[0]
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        results = []
        for p in procs:
            out, err = p.communicate(timeout=1800)
            if p.returncode != 0:
                raise RuntimeError(f"worker failed: {err[-3000:]}")
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return results, load


def rows_of(url):
    from nas_hw.measure.store import open_cache

    with open_cache(url) as store:
        return {(r.fingerprint, r.signature): r.stats.mean for r in store.records()}


def fill(server, args):
    nets = [[(i + k) % N_NETS for k in range(NETS_PER_PROC)] for i in range(args.procs)]
    serial_url = server.create_database("serial")
    (serial,), _ = run_workers(serial_url, [sorted({s for n in nets for s in n})], args.measure_s)
    serial_rows = rows_of(serial_url)
    runs = []
    for rep in range(args.repeats):
        url = server.create_database(f"fill{rep}")
        results, load = run_workers(url, nets, args.measure_s)
        rows = rows_of(url)
        measured = [sig for r in results for sig in r["measured"]]
        same = all(r["estimates"][s] == serial["estimates"][s] for r in results for s in r["estimates"])
        runs.append({"rows": len(rows), "rows_expected": len(serial_rows),
                     "rows_lost": len(set(serial_rows) - set(rows)),
                     "rows_differing": sum(rows.get(k) != v for k, v in serial_rows.items()),
                     "measurements": len(measured), "measured_twice": len(measured) - len(set(measured)),
                     "estimates_identical_to_serial": same,
                     "estimates_compared": sum(len(r["estimates"]) for r in results),
                     "max_process_s": max(r["seconds"] for r in results), "load1_at_start": load})
        print(f"fill {rep + 1}/{args.repeats}: {runs[-1]}", flush=True)
    return {"processes": args.procs, "networks": N_NETS, "networks_per_process": NETS_PER_PROC,
            "synthetic_measure_s": args.measure_s, "serial_rows": len(serial_rows),
            "serial_measurements": len(serial["measured"]), "runs": runs}


def read(server, args):
    import nnabla as nn

    from nas_hw import CandidateTable, LatencyGraphEstimator
    from nas_hw.measure.store import LatencyCache, open_cache
    from nas_hw.measure.store.transfer import copy_rows
    from nas_hw.search.spaces import MobileNetSpace

    space = dict(in_channels=1, stem_channels=8, stage_channels=(8, 16, 16, 24), stage_blocks=(5, 5, 5, 5),
                 stage_strides=(1, 1, 2, 1), kernels=(3, 5, 7), expansions=(3, 6))
    nn.clear_parameters()
    model = MobileNetSpace(mode="full", **space)
    model.apply(training=False)
    url = server.create_database("read")
    log = []
    with synthetic_store(url, 0.0, log) as store:  # every row stored first
        CandidateTable.build(model, LatencyGraphEstimator(device_id=0, ext_name="cpu", cache=store),
                             input_shape=(1, 1, 8, 8), progress=False)
    tmp = tempfile.mkdtemp(prefix="nas_hw_bench.")
    path = os.path.join(tmp, "rows.sqlite")
    with open_cache(url) as src, LatencyCache(path) as dst:
        copy_rows(src, dst)

    def build(location):
        with open_cache(location) as store:
            est = LatencyGraphEstimator(device_id=0, ext_name="cpu", cache=store)
            t0 = time.perf_counter()
            table = CandidateTable.build(model, est, input_shape=(1, 1, 8, 8), progress=False)
            elapsed = time.perf_counter() - t0
            if store.measurements:
                raise RuntimeError(f"{location}: {store.measurements} measurement(s): rows missing")
        return elapsed, [[float(x) for x in row] for row in table.costs["latency"]]

    times = {"server": [], "sqlite": []}
    loads, tables = [], {}
    build(url), build(path)  # warm-up: imports, nnabla's first graph
    for r in range(args.rounds):
        order = [("server", url), ("sqlite", path)]
        for name, location in (order if r % 2 == 0 else order[::-1]):
            loads.append(os.getloadavg()[0])
            elapsed, tables[name] = build(location)
            times[name].append(elapsed)
    if tables["server"] != tables["sqlite"]:
        raise RuntimeError("the server and the SQLite file gave different tables")
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"rows": len(log), "rounds": args.rounds, "median_s": med, "times_s": times,
            "ratio_server_over_sqlite": med["server"] / med["sqlite"], "tables_identical": True,
            "load1_min": min(loads), "load1_max": max(loads), "load1_median": statistics.median(loads)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3, help="fills, each into a fresh database")
    p.add_argument("--procs", type=int, default=8)
    p.add_argument("--rounds", type=int, default=7, help="interleaved read rounds")
    p.add_argument("--measure-s", type=float, default=0.005, help="seconds one synthetic measurement takes")
    p.add_argument("--quick", action="store_true", help="1 fill, 2 read rounds: proves the script works")
    p.add_argument("--out", default="benchmarks/results/store_server.json")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--nets", type=int, nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)
    if args.quick:
        args.repeats, args.rounds = 1, 2
    logging.getLogger("nnabla").setLevel(logging.ERROR)
    from tests.pg_server import LocalServer

    server = LocalServer().start()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    load_before = os.getloadavg()
    try:
        filled = fill(server, args)
        read_result = read(server, args)
    finally:
        server.cleanup()
    import psycopg

    doc = {"command": " ".join(["python benchmarks/store_server.py", *(argv if argv is not None else sys.argv[1:])]),
           "date": started, "python": platform.python_version(), "psycopg": psycopg.__version__,
           "server": os.path.basename(os.path.dirname(server.bindir)), "cpus": os.cpu_count(),
           "load_avg_before": load_before, "load_avg_after": os.getloadavg(), "fill": filled, "read": read_result}
    with open(args.out, "w") as fh:
        json.dump(doc, fh, indent=1)
    print(json.dumps({"fill": [{k: r[k] for k in ("rows_lost", "measured_twice", "estimates_identical_to_serial")}
                               for r in filled["runs"]],
                      "read_median_s": read_result["median_s"],
                      "ratio": round(read_result["ratio_server_over_sqlite"], 3),
                      "load": [read_result["load1_min"], read_result["load1_max"]]}, indent=1))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
