"""Throughput (samples/s) and latency of a MobileNetV2-style network at batch 1 and 8.

    .venv/bin/python benchmarks/throughput.py [--out benchmarks/results/throughput.json]

The network is the derived MobileNetSpace subnetwork with the largest candidate everywhere
(kernel 7, expansion 6), input 3x32x32; whole forwards timed with nas_hw's timing core.
"""
import argparse
import json
import logging
import sys
from datetime import datetime, timezone

import nnabla as nn
from nnabla.logger import logger as nnabla_logger

from nas_hw.device import fingerprint
from nas_hw.estimators.throughput import ThroughputEstimator
from nas_hw.search.spaces import MobileNetSpace

nnabla_logger.setLevel(logging.ERROR)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    p.add_argument("--n-run", type=int, default=50)
    p.add_argument("--out", default="benchmarks/results/throughput.json")
    args = p.parse_args(argv)
    space = MobileNetSpace(in_channels=3, stem_channels=16, stage_channels=(16, 24, 32), stage_blocks=(2, 3, 3),
                           stage_strides=(1, 2, 2))
    net = space.derive([len(names) - 1 if names[-1] != "zero" else len(names) - 2
                        for names in space.candidate_names_per_group])
    net.apply(training=False)
    est = ThroughputEstimator(ext_name="cpu", n_run=args.n_run, n_warmup=5, max_measure_execution_time=30,
                              time_scale="m")
    rows = [{"batch_size": r.batch_size, "latency_ms": r.latency, "samples_per_s": r.samples_per_s}
            for r in est.sweep(lambda b: net(nn.Variable((b, 3, 32, 32))), args.batch_sizes)]
    doc = {"command": "python benchmarks/throughput.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": fingerprint("cpu").key, "choices": net.choices, "rows": rows}
    with open(args.out, "w") as fh:
        json.dump(doc, fh, indent=1)
    for r in rows:
        print(f"batch {r['batch_size']:3d}: {r['latency_ms']:8.3f} ms  {r['samples_per_s']:9.1f} samples/s")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
