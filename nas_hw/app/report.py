"""``nas-hw report``: per-layer latency, memory and FLOPs of one network, next to its true latency.

The network is an nnabla ``.nnp`` file or ``module:function`` (an importable function that
returns the network's output ``nnabla.Variable``). The command prints one row per nnabla
function with

* ``latency_<unit>``: the function's latency from the layer-based
  :class:`~nas_hw.estimators.graph.LatencyGraphEstimator` (each function timed alone, forward
  only, served from the persistent cache when already measured); the rows add up to the
  layer-based estimate,
* ``share_%``: that latency as a percentage of the layer-based estimate,
* ``params``: parameter elements first used by that function (shared ones counted once),
* ``act_bytes``: bytes of the activation buffers the function allocates (0 when in-place),
* ``flops``: its FLOPs (1 MAC = 2 FLOPs; empty when nas_hw has no formula for it),

then the totals and the *true* latency of the whole network from
:class:`~nas_hw.estimators.network.Profiler` (network-based, one ``forward()`` of the graph).
With ``--backend onnxruntime`` the network is exported to ONNX and timed on ONNX Runtime
(``--provider``, ``--threads``, ``--optimization``): a row then holds the latency of the
runtime's fused kernel starting at its function (type ``Convolution+BatchNormalization+ReLU``),
and the other functions of that kernel say which row they were fused into.
It writes ``report.csv`` (the rows), ``report.json`` (rows and totals) and ``report.png`` (a
horizontal bar chart of the ``--top`` slowest layers, drawn with matplotlib, a dependency of
nas_hw; ``--no-plot`` skips it). While the layers are measured a progress bar runs on stderr
(on a terminal; ``--progress`` / ``--no-progress`` force it on / off).

Exit codes of :func:`run`: 0 success, 2 bad input (the network or an option), 1 a failure
while measuring or writing (a layer that cannot run, an unusable cache, matplotlib missing).
"""
import os
import re
import sys

import nnabla as nn
from tqdm.auto import tqdm

from ..constants import BACKENDS, NNP_MAX_BYTES, NNP_MAX_NETWORK_BYTES, ORT_OPTIMIZATION_LEVELS, TIME_SCALES
from ..errors import NasHwError, NetworkInputError
from ..estimators.graph import LatencyGraphEstimator
from ..measure.backends import make_backend
from ..measure.device import get_context
from ..measure.graph import functions_of
from ..measure.timing import measure
from ..report.layers import build_report
from ..report.loader import load_network, parse_input_shape
from ..report.nnp import NnpLimits
from ..report.writers import (CSV_NAME, JSON_NAME, PNG_NAME, format_table, require_matplotlib,
                              write_bar_chart, write_csv, write_json)
from .entry import fail


def add_arguments(parser):
    """Fills an argparse (sub)parser with the ``report`` command's arguments."""
    parser.add_argument("network", metavar="NETWORK",
                        help="an nnabla .nnp file, or module:function (an importable function "
                             "returning the output nnabla.Variable; given the input Variable "
                             "when it takes one argument)")
    parser.add_argument("--input-shape", default=None, metavar="N,C,H,W",
                        help="input shape (default: the .nnp's own; 1,3,32,32 for a "
                             "module:function taking an input). For an .nnp only the batch "
                             "size may differ from the file's")
    parser.add_argument("--ext-name", default="cpu", help="nnabla extension: cpu, cuda or cudnn (default cpu)")
    parser.add_argument("--device-id", type=int, default=0, help="device index (default 0)")
    parser.add_argument("--backend", default="nnabla", choices=BACKENDS,
                        help="where layers and the network are timed: nnabla's kernels, or the network "
                             "exported to ONNX and run on ONNX Runtime, unit by fused kernel (the onnx "
                             "extra) (default nnabla)")
    parser.add_argument("--provider", default="cpu",
                        help="onnxruntime execution provider: cpu, cuda, tensorrt or a full name (default cpu)")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (default 1)")
    parser.add_argument("--optimization", default="all", choices=tuple(ORT_OPTIMIZATION_LEVELS),
                        help="onnxruntime graph optimization level (default all, ONNX Runtime's own)")
    parser.add_argument("--n-run", type=int, default=100,
                        help="timed runs per layer and for the true latency (default 100)")
    parser.add_argument("--n-warmup", type=int, default=10, help="untimed runs first (default 10)")
    parser.add_argument("--max-measure-execution-time", type=float, default=1.0, metavar="SECONDS",
                        help="time budget per measurement in seconds (default 1)")
    parser.add_argument("--time-scale", default="m", choices=tuple(TIME_SCALES),
                        help="latency unit: m (ms), u (us), n (ns) (default m)")
    parser.add_argument("--cache", default=None, metavar="PATH",
                        help="latency cache file or postgresql:// URL (default $NAS_HW_CACHE or the per-user cache)")
    parser.add_argument("--wait-for-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="before measuring, a busy machine is reported; wait at most this long for "
                             "it to become quiet first (default 0: report only)")
    parser.add_argument("--out", default=".", metavar="DIR",
                        help=f"directory for {CSV_NAME}, {JSON_NAME} and {PNG_NAME} (default: .)")
    parser.add_argument("--top", type=int, default=10, metavar="K",
                        help="layers in the bar chart, slowest first (default 10)")
    parser.add_argument("--no-plot", dest="plot", action="store_false",
                        help=f"do not draw {PNG_NAME} (the chart needs matplotlib)")
    parser.add_argument("--max-nnp-bytes", type=byte_count, default=NNP_MAX_BYTES, metavar="BYTES",
                        help="most bytes decompressed from an .nnp's network definition (e.g. 64M; "
                             f"default {NNP_MAX_BYTES // 2**20}M); parameter values are never read")
    parser.add_argument("--max-network-bytes", type=byte_count, default=NNP_MAX_NETWORK_BYTES, metavar="BYTES",
                        help="most bytes of tensors an .nnp network may declare at the batch size "
                             f"used (e.g. 2G; default {NNP_MAX_NETWORK_BYTES // 2**20}M)")
    bar = parser.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None,
                     help="show the progress bar even when stderr is not a terminal")
    bar.add_argument("--no-progress", dest="progress", action="store_false",
                     help="never show the progress bar (default: only on a terminal)")
    return parser


_BYTE_COUNT = re.compile(r"^\s*([0-9]{1,15})\s*([KMGT]?)(I?B)?\s*$", re.IGNORECASE)


def byte_count(text):
    """``"64M"`` -> 67108864: a positive number of bytes, with an optional K/M/G/T (binary) suffix."""
    match = _BYTE_COUNT.match(str(text))
    number = 0 if match is None else int(match.group(1)) * 2 ** (10 * " KMGT".index(match.group(2).upper() or " "))
    if number < 1:
        raise ValueError(f"not a positive byte count such as 1048576, 64M or 2G: {text!r}")
    return number


byte_count.__name__ = "byte count"  # argparse names the type in its message


class LayerProgress:
    """A progress bar over the layers of one network, moved by the estimator's ``timer`` seam.

    A layer served from the cache is never timed, so the bar's position is read from the
    cache's public counters (hits and measurements) each time a layer is timed: cached layers
    are counted as they are passed, measured ones as they are timed.

    Args:
        n_layers: the functions of the network.
        enabled: ``True`` / ``False`` force the bar on / off; ``None``: on a terminal only.
        file: where the bar is drawn (stderr).
    """

    def __init__(self, n_layers, enabled=None, file=None):
        self.n_layers = n_layers
        self.enabled = enabled
        self.file = file
        self.bar = None
        self.cache = None
        self._start = 0
        self.timed = 0

    def bind(self, cache):
        """Starts the bar; its position is read from ``cache`` (the estimator's) from now on."""
        self.cache = cache
        self._start = cache.hits + cache.measurements
        self.bar = tqdm(total=self.n_layers, desc="measuring layers", unit="layer", leave=False,
                        disable=None if self.enabled is None else not self.enabled,
                        file=self.file or sys.stderr)

    def _move_to(self, done):
        if self.bar is None:
            return
        done = min(max(done, self.bar.n), self.bar.total)
        self.bar.update(done - self.bar.n)

    def _done(self):
        return 0 if self.cache is None else self.cache.hits + self.cache.measurements - self._start

    def timer(self, fn, **kwargs):
        """The estimator's ``timer``: :func:`~nas_hw.measure.timing.measure`, moving the bar."""
        self._move_to(self._done())
        stats = measure(fn, **kwargs)
        self.timed += 1
        self._move_to(self._done() + 1)
        return stats

    def close(self):
        """Fills and closes the bar."""
        if self.bar is not None:
            self._move_to(self.bar.total)
            self.bar.close()


def run(args):
    """Runs ``nas-hw report`` with parsed ``args``; returns the exit code."""
    try:
        if args.top < 1:
            raise NetworkInputError(f"--top must be >= 1, got {args.top}")
        if args.n_run < 1:
            raise NetworkInputError(f"--n-run must be >= 1, got {args.n_run}")
        if os.path.exists(args.out) and not os.path.isdir(args.out):
            raise NetworkInputError(f"--out {args.out!r} exists and is not a directory")
        input_shape = None if args.input_shape is None else parse_input_shape(args.input_shape)
        if args.plot:
            require_matplotlib()  # fail before measuring anything
        ctx = get_context(args.ext_name, args.device_id)
        with nn.context_scope(ctx):
            network = load_network(args.network, input_shape, NnpLimits(
                max_bytes=getattr(args, "max_nnp_bytes", NNP_MAX_BYTES),
                max_network_bytes=getattr(args, "max_network_bytes", NNP_MAX_NETWORK_BYTES)))
        batches = {int(v.shape[0]) for v in network.inputs if len(v.shape)}
        if len(batches) > 1:
            raise NetworkInputError(f"the inputs of {args.network!r} disagree on the batch size "
                                    f"({[tuple(v.shape) for v in network.inputs]})")
        progress = LayerProgress(len(functions_of(network.output)), getattr(args, "progress", None))
        backend = getattr(args, "backend", "nnabla")
        if backend != "nnabla":
            backend = make_backend(backend, provider=args.provider, threads=args.threads,
                                   optimization=args.optimization, device_id=args.device_id)
        estimator = LatencyGraphEstimator(
            device_id=args.device_id, ext_name=args.ext_name, n_run=args.n_run,
            n_warmup=args.n_warmup, max_measure_execution_time=args.max_measure_execution_time,
            time_scale=args.time_scale, cache=args.cache, batch_size=batches.pop() if batches else 1,
            timer=progress.timer, wait_for_quiet=getattr(args, "wait_for_quiet", 0.0), backend=backend)
        progress.bind(estimator.cache)
    except (ValueError, TypeError) as err:  # option values refused by the estimator
        return fail(err, 2)
    except NasHwError as err:
        return fail(err)
    try:
        try:
            with nn.context_scope(ctx):
                report = build_report(network, estimator, n_run=args.n_run)
        finally:
            progress.close()
        os.makedirs(args.out, exist_ok=True)
        written = [os.path.join(args.out, CSV_NAME), os.path.join(args.out, JSON_NAME)]
        write_csv(report, written[0])
        write_json(report, written[1])
        if args.plot:
            written.append(os.path.join(args.out, PNG_NAME))
            write_bar_chart(report, written[2], args.top)
    except (NasHwError, OSError) as err:
        return fail(err, 1)
    finally:
        estimator.cache.close()
    sys.stdout.write(format_table(report) + "\n")
    sys.stdout.write(f"wrote {', '.join(written)}" + ("" if args.plot else " (no chart: --no-plot)") + "\n")
    return 0
