"""Worker processes for the cross-process cache tests (run as ``python tests/helpers_proc.py``).

Subcommands (each prints one JSON line on stdout as its last line):

    estimate CACHE NET [NET ...] [--size S] [--fingerprint FP] [--n-run N]
        Builds each NET (``mobilenet:full``, ``darts:sample:3``: space, mode, seed), runs
        LatencyEstimator and LatencyGraphEstimator against the cache file and prints
        ``{"measurements": int, "estimates": {...}, "rows": int}`` or
        ``{"error": type, "message": str, "missing": [...]}``.

    fill CACHE START STOP [--real] [--sleep S]
        Stores synthetic measurements for signatures ``syn:START..STOP-1`` through
        ``LatencyCache.get_or_measure`` (so already-present rows are not measured again), then
        with ``--real`` estimates a few small real layers (each synthetic measurement sleeps S
        seconds); prints the measurement count. Made
        to be killed at any point by the crash-safety test. Without ``--real`` it loads only
        ``nas_hw.cache`` (not nnabla), so it starts in a fraction of a second; it prints
        ``opening`` before it opens the cache and ``ready`` once it is open.

    hold CACHE lock|db [--seconds S]
        Holds the cache's measuring lock, or an open SQLite write transaction, prints ``held``
        and sleeps S seconds (the stuck-peer test stops it with SIGSTOP).

    race CACHE N [--sleep S]
        Every process walks the same signatures ``race:0..N-1`` through ``get_or_measure``
        (each synthetic measurement sleeps S seconds to widen the window); prints the count of
        measurements this process took.
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

SYN_FINGERPRINT = "synthetic-device"
N_REAL_SIGNATURES = 16  # distinct functions of the --real graphs: AddScalar and ReLU at 8 shapes


def syn_seconds(i):
    """The synthetic mean time of signature ``syn:i`` (checked after crashes)."""
    return 1e-4 * (1 + i % 7)


def import_cache_light():
    """``nas_hw.measure.store`` without running ``nas_hw/__init__`` (which imports nnabla): the
    package is registered bare, its pure-Python store, errors and timing modules load on their own."""
    import importlib
    import types

    if "nas_hw" not in sys.modules:
        pkg = types.ModuleType("nas_hw")
        pkg.__path__ = [os.path.join(ROOT, "nas_hw")]
        sys.modules["nas_hw"] = pkg
    return importlib.import_module("nas_hw.measure.store"), importlib.import_module("nas_hw.measure.timing")


def build_net(spec, size):
    import nnabla as nn
    from nas_hw.search.spaces import DartsSpace, MobileNetSpace

    parts = spec.split(":")
    space, mode = parts[0], parts[1]
    seed = int(parts[2]) if len(parts) > 2 else 0
    nn.clear_parameters()
    cls = {"mobilenet": MobileNetSpace, "darts": DartsSpace}[space]
    net = cls(mode=mode, seed=seed)
    net.apply(training=False)
    out = net(nn.Variable((1, 1, size, size)))
    return net, out


def estimate(args):
    from nas_hw import LatencyCache, LatencyEstimator, LatencyGraphEstimator, MissingMeasurementsError

    cache = LatencyCache(args.cache)
    kw = dict(device_id=0, ext_name="cpu", outlier=0.05, time_scale="m", n_warmup=1,
              max_measure_execution_time=1, n_run=args.n_run, cache=cache)
    if args.fingerprint:
        kw["fingerprint"] = args.fingerprint
    estimates = {}
    try:
        for spec in args.nets:
            net, out = build_net(spec, args.size)
            estimates[f"{spec}/module"] = LatencyEstimator(**kw).get_estimation(net)
            estimates[f"{spec}/graph"] = LatencyGraphEstimator(**kw).get_estimation(out)
    except MissingMeasurementsError as err:
        return {"error": type(err).__name__, "message": str(err), "missing": err.missing,
                "measurements": cache.measurements}
    return {"measurements": cache.measurements, "estimates": estimates, "rows": len(cache)}


def fill(args):
    if args.real:
        from nas_hw import LatencyCache
        from nas_hw.measure.timing import TimingStats
    else:
        cache_mod, timing_mod = import_cache_light()
        LatencyCache, TimingStats = cache_mod.LatencyCache, timing_mod.TimingStats

    import time

    print("opening", flush=True)  # the fresh-file test kills from here on: while the file is created
    cache = LatencyCache(args.cache)
    print("ready", flush=True)

    def synthetic(t):
        time.sleep(args.sleep)  # a measurement takes time: the process is killed mid-run
        return TimingStats(t, t, 0.0, t, 3, 3), False

    for i in range(args.start, args.stop):
        t = syn_seconds(i)
        cache.get_or_measure(SYN_FINGERPRINT, f"syn:{i:05d}", lambda t=t: synthetic(t),
                             settings={"synthetic": True})
    if args.real:
        import nnabla as nn
        import nnabla.functions as F

        from nas_hw import LatencyGraphEstimator

        est = LatencyGraphEstimator(device_id=0, ext_name="cpu", n_run=3, n_warmup=0,
                                    max_measure_execution_time=1, cache=cache)
        for c in range(1, 9):
            x = nn.Variable((1, c, 4, 4))
            est.get_estimation(F.relu(F.add_scalar(x, 1.0)))
    return {"measurements": cache.measurements, "rows": len(cache)}


def race(args):
    import time

    cache_mod, timing_mod = import_cache_light()
    cache = cache_mod.LatencyCache(args.cache)

    def measure():
        time.sleep(args.sleep)
        return timing_mod.TimingStats(1e-3, 1e-3, 0.0, 1e-3, 1, 1), False

    for i in range(args.n):
        cache.get_or_measure(SYN_FINGERPRINT, f"race:{i:05d}", measure)
    return {"measurements": cache.measurements, "hits": cache.hits, "rows": len(cache)}


def hold(args):
    """Holds the measuring lock (``lock``) or an open write transaction (``db``) of the cache,
    prints ``held`` and sleeps: the test stops it with SIGSTOP and checks a peer gives up."""
    import time

    cache_mod, _ = import_cache_light()
    cache = cache_mod.LatencyCache(args.cache)
    if args.what == "lock":
        with cache.measuring_lock():
            print("held", flush=True)
            time.sleep(args.seconds)
    else:
        cache.conn.execute("BEGIN IMMEDIATE")
        print("held", flush=True)
        time.sleep(args.seconds)
    return {}


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("estimate")
    p.add_argument("cache")
    p.add_argument("nets", nargs="+")
    p.add_argument("--size", type=int, default=16)
    p.add_argument("--fingerprint", default=None)
    p.add_argument("--n-run", type=int, default=3)
    p = sub.add_parser("fill")
    p.add_argument("cache")
    p.add_argument("start", type=int)
    p.add_argument("stop", type=int)
    p.add_argument("--real", action="store_true")
    p.add_argument("--sleep", type=float, default=0.0)
    p = sub.add_parser("race")
    p.add_argument("cache")
    p.add_argument("n", type=int)
    p.add_argument("--sleep", type=float, default=0.0)
    p = sub.add_parser("hold")
    p.add_argument("cache")
    p.add_argument("what", choices=["lock", "db"])
    p.add_argument("--seconds", type=float, default=300.0)
    args = parser.parse_args()
    result = {"estimate": estimate, "fill": fill, "race": race, "hold": hold}[args.cmd](args)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
