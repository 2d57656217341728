"""Worker processes for the cross-process cache tests (run as ``python tests/helpers_proc.py``).

Subcommands (each prints one JSON line on stdout as its last line):

    estimate CACHE NET [NET ...] [--size S] [--fingerprint FP] [--n-run N]
        Builds each NET (``mobilenet:full``, ``darts:sample:3``: space, mode, seed), runs
        LatencyEstimator and LatencyGraphEstimator against the cache file and prints
        ``{"measurements": int, "estimates": {...}, "rows": int}`` or
        ``{"error": type, "message": str, "missing": [...]}``.

    fill CACHE START STOP [--real]
        Stores synthetic measurements for signatures ``syn:START..STOP-1`` through
        ``LatencyCache.get_or_measure`` (so already-present rows are not measured again), then
        with ``--real`` estimates a few small real layers; prints the measurement count. Made
        to be killed at any point by the crash-safety test.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SYN_FINGERPRINT = "synthetic-device"


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
    from nas_hw import LatencyCache, LatencyGraphEstimator
    from nas_hw.timing import TimingStats

    cache = LatencyCache(args.cache)
    for i in range(args.start, args.stop):
        t = 1e-4 * (1 + i % 7)
        cache.get_or_measure(SYN_FINGERPRINT, f"syn:{i:05d}",
                             lambda t=t: (TimingStats(t, t, 0.0, t, 3, 3), False),
                             settings={"synthetic": True})
    if args.real:
        import nnabla as nn
        import nnabla.functions as F

        est = LatencyGraphEstimator(device_id=0, ext_name="cpu", n_run=3, n_warmup=0,
                                    max_measure_execution_time=1, cache=cache)
        for c in range(1, 9):
            x = nn.Variable((1, c, 4, 4))
            est.get_estimation(F.relu(F.add_scalar(x, 1.0)))
    return {"measurements": cache.measurements, "rows": len(cache)}


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
    args = parser.parse_args()
    result = estimate(args) if args.cmd == "estimate" else fill(args)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
