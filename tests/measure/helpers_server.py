"""Worker processes for the server-store tests (run as ``python tests/measure/helpers_server.py``).
Loads the store without nnabla (see helpers_proc.import_cache_light), so a worker starts fast.

    fill URL START STOP [--sleep S] [--reconnect-s R]
        Measures synthetic signatures ``syn:START..STOP-1`` through ``get_or_measure`` (each
        measurement sleeps S seconds; prints ``ready`` once the store is open, then one line per
        measurement ``measured syn:i``); ends with ``{"measurements": n, "rows": n}``. A
        CacheError ends it with its message on stderr (exit 1).
    race URL N [--sleep S]
        Every process walks the same signatures ``race:0..N-1``; prints its measurement count.
    hold URL FINGERPRINT
        Takes the measuring lock of FINGERPRINT, prints ``locked`` and sleeps until killed.
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from helpers_proc import SYN_FINGERPRINT, import_cache_light, syn_seconds  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("cmd", choices=["fill", "race", "hold"])
    parser.add_argument("url")
    parser.add_argument("args", nargs="*")
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--reconnect-s", type=float, default=30.0)
    args = parser.parse_args()
    store_mod, timing_mod = import_cache_light()
    CacheError = sys.modules["nas_hw.errors"].CacheError
    try:
        store = store_mod.PostgresStore(args.url, reconnect_s=args.reconnect_s)
        print("ready", flush=True)
        if args.cmd == "hold":
            with store.measuring_lock(args.args[0]):
                print("locked", flush=True)
                time.sleep(3600)
            return 0

        def measure(t, sig):
            time.sleep(args.sleep)
            print(f"measured {sig}", flush=True)
            return timing_mod.TimingStats(t, t, 0.0, t, 3, 3), False

        if args.cmd == "fill":
            sigs = [(f"syn:{i:05d}", syn_seconds(i)) for i in range(int(args.args[0]), int(args.args[1]))]
        else:
            sigs = [(f"race:{i:05d}", 1e-3) for i in range(int(args.args[0]))]
        for sig, t in sigs:
            store.get_or_measure(SYN_FINGERPRINT, sig, lambda t=t, sig=sig: measure(t, sig),
                                 settings={"synthetic": True})
        print(json.dumps({"measurements": store.measurements, "rows": len(store)}), flush=True)
    except CacheError as err:
        sys.stderr.write(f"CacheError: {err}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
