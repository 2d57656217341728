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
It writes ``report.csv`` (the rows), ``report.json`` (rows and totals) and ``report.png`` (a
horizontal bar chart of the ``--top`` slowest layers; needs matplotlib, from
``pip install 'nas_hw[examples]'``).

Exit codes of :func:`run`: 0 success, 2 bad input (the network or an option), 1 a failure
while measuring or writing (a layer that cannot run, an unusable cache, matplotlib missing).
"""
import argparse
import csv
import importlib
import inspect
import json
import logging
import os
import sys
import zipfile
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import List, Optional, Tuple

import nnabla as nn

from .errors import NasHwError
from .estimators.base import non_parameter_leaves
from .graph_utils import functions_of

logger = logging.getLogger(__name__)

DEFAULT_INPUT_SHAPE = (1, 3, 32, 32)
TIME_SCALES = ("m", "u", "n")
UNIT_NAMES = {"m": "ms", "u": "us", "n": "ns"}
NNP_GRAPH_FILES = (".nntxt", ".prototxt", ".protobuf")
EXTRA_HINT = "pip install 'nas_hw[examples]'"
CSV_NAME = "report.csv"
JSON_NAME = "report.json"
PNG_NAME = "report.png"


class NetworkInputError(NasHwError, ValueError):
    """The NETWORK argument (or an option) cannot be turned into an nnabla graph."""


class DependencyMissingError(NasHwError, RuntimeError):
    """An optional dependency needed by the requested output is not installed."""


# ----------------------------------------------------------------------------- loading

@dataclass
class LoadedNetwork:
    """A network ready to report on.

    Attributes:
        output: the graph's output Variable.
        inputs: its input Variables (they carry the batch axis).
        source: how it was given (the path or ``module:function``).
        name: the network's name (the .nnp network name or the function's name).
        parameters: the parameter scope the graph's parameters live in (kept apart from
            nnabla's global scope, so reporting never touches the caller's parameters).
    """

    output: nn.Variable
    inputs: List[nn.Variable]
    source: str
    name: str
    parameters: OrderedDict = field(default_factory=OrderedDict, repr=False)


def parse_input_shape(text):
    """``"1,3,32,32"`` -> ``(1, 3, 32, 32)``.

    Raises:
        NetworkInputError: not a comma-separated list of positive integers.
    """
    parts = [p.strip() for p in str(text).strip("()[] ").split(",") if p.strip()]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if not shape or any(d <= 0 for d in shape):
        raise NetworkInputError(f"--input-shape must be comma-separated positive integers "
                                f"such as 1,3,32,32, got {text!r}")
    return shape


def _is_function_spec(spec):
    return ":" in spec and not os.path.exists(spec)


def load_network(spec, input_shape=None):
    """Builds the graph of ``spec``: an ``.nnp`` file path or ``module:function``.

    For an ``.nnp`` file the first network is used and its first output; ``input_shape``
    (optional) may change the batch size only, the other axes must match the file's input.
    A ``module:function`` that takes an argument is called with an input ``nnabla.Variable``
    of ``input_shape`` (default ``1,3,32,32``); one that takes none builds its own input, and
    then ``input_shape`` must not be given.

    Raises:
        NetworkInputError: missing or invalid file, unknown module or function, a function
            that does not return an ``nnabla.Variable``, an input shape that does not fit.
    """
    if not isinstance(spec, str) or not spec:
        raise NetworkInputError(f"NETWORK must be an .nnp file or module:function, got {spec!r}")
    if _is_function_spec(spec):
        return _load_function(spec, input_shape)
    return _load_nnp(spec, input_shape)


def _load_nnp(path, input_shape):
    from nnabla.utils.nnp_graph import NnpLoader

    if not os.path.exists(path):
        raise NetworkInputError(f"network file {path!r} does not exist (NETWORK is an .nnp file "
                                "or module:function)")
    if not os.path.isfile(path):
        raise NetworkInputError(f"network file {path!r} is not a regular file")
    if not path.lower().endswith(".nnp"):
        raise NetworkInputError(f"network file {path!r} is not an .nnp file (NETWORK is an .nnp "
                                "file or module:function)")
    if not zipfile.is_zipfile(path):
        raise NetworkInputError(f"{path!r} is not an .nnp file: an .nnp is a zip archive, this "
                                "file is not one")
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError) as err:
        raise NetworkInputError(f"{path!r} is not a readable .nnp file: {err}") from err
    if not any(n.lower().endswith(NNP_GRAPH_FILES) for n in names):
        raise NetworkInputError(f"{path!r} is a zip archive without nnp content (no network "
                                f"definition file {'/'.join(NNP_GRAPH_FILES)} inside; it holds "
                                f"{sorted(names)[:5]})")
    params = OrderedDict()
    with nn.parameter_scope("", scope=params):
        try:
            loader = NnpLoader(path)
        except Exception as err:  # nnabla raises many kinds (protobuf, h5py, KeyError...)
            raise NetworkInputError(f"{path!r} is not a valid .nnp file: {type(err).__name__}: "
                                    f"{_first_line(err)}") from err
        networks = loader.get_network_names()
        if not networks:
            raise NetworkInputError(f"{path!r} holds no network")
        name = networks[0]
        try:
            net = loader.get_network(name)
            if input_shape is not None:
                net = _nnp_at_shape(loader, name, net, input_shape, path)
        except NetworkInputError:
            raise
        except Exception as err:
            raise NetworkInputError(f"cannot build network {name!r} of {path!r}: "
                                    f"{type(err).__name__}: {_first_line(err)}") from err
    if not net.outputs:
        raise NetworkInputError(f"network {name!r} of {path!r} has no output")
    output = list(net.outputs.values())[0]
    return LoadedNetwork(output, list(net.inputs.values()), path, name, params)


def _nnp_at_shape(loader, name, net, input_shape, path):
    inputs = list(net.inputs.values())
    if len(inputs) != 1:
        raise NetworkInputError(f"--input-shape needs a network with one input; {name!r} of "
                                f"{path!r} has {len(inputs)}: {list(net.inputs)}")
    stored = tuple(inputs[0].shape)
    if len(stored) != len(input_shape) or tuple(stored[1:]) != tuple(input_shape[1:]):
        raise NetworkInputError(f"--input-shape {_shape_str(input_shape)} does not fit network "
                                f"{name!r} of {path!r}, whose input is {_shape_str(stored)}: an "
                                ".nnp network's shape is fixed, only the batch size can change")
    if stored[0] == input_shape[0]:
        return net
    return loader.get_network(name, batch_size=input_shape[0])


def _load_function(spec, input_shape):
    module_name, _, func_name = spec.partition(":")
    if not module_name or not func_name:
        raise NetworkInputError(f"NETWORK {spec!r}: module:function needs both parts, e.g. "
                                "mypackage.nets:build")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        raise NetworkInputError(f"cannot import module {module_name!r} of {spec!r}: {err} (and "
                                f"no file named {spec!r} exists)") from err
    except Exception as err:
        raise NetworkInputError(f"importing module {module_name!r} failed: {type(err).__name__}: "
                                f"{_first_line(err)}") from err
    obj = module
    for part in func_name.split("."):
        if not hasattr(obj, part):
            public = sorted(n for n in dir(module) if not n.startswith("_")
                            and callable(getattr(module, n, None)))
            raise NetworkInputError(f"module {module_name!r} has no function {func_name!r}; its "
                                    f"callables: {public[:20]}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise NetworkInputError(f"{spec!r} is not a function (it is a {type(obj).__name__!r} "
                                "value)")
    takes_input = _takes_an_argument(obj, spec)
    if not takes_input and input_shape is not None:
        raise NetworkInputError(f"{spec!r} takes no argument and builds its own input, so "
                                "--input-shape cannot apply; leave it out")
    params = OrderedDict()
    inputs = []
    with nn.parameter_scope("", scope=params), nn.auto_forward(False):
        try:
            if takes_input:
                x = nn.Variable(tuple(input_shape or DEFAULT_INPUT_SHAPE), need_grad=False)
                inputs = [x]
                out = obj(x)
            else:
                out = obj()
        except Exception as err:
            raise NetworkInputError(f"{spec!r} raised {type(err).__name__}: {_first_line(err)}") from err
        if not isinstance(out, nn.Variable):
            raise NetworkInputError(f"{spec!r} returned {type(out).__name__}, expected the "
                                    "network's output nnabla.Variable")
        if out.parent is None:
            raise NetworkInputError(f"{spec!r} returned a Variable computed by no function "
                                    "(an input or a parameter), so there is no network to report")
        if not inputs:
            inputs = non_parameter_leaves(functions_of(out))
    return LoadedNetwork(out, inputs, spec, func_name, params)


def _takes_an_argument(fn, spec):
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return True  # a builtin or C callable: assume it takes the input
    params = [p for p in sig.parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    required = [p for p in params if p.default is p.empty and p.kind != p.VAR_POSITIONAL]
    if len(required) > 1:
        raise NetworkInputError(f"{spec!r} needs {len(required)} arguments "
                                f"({[p.name for p in required]}); it must take none or one (the input Variable)")
    return bool(params)


def _first_line(err):
    text = str(err).strip()
    return text.splitlines()[0] if text else repr(err)


def _shape_str(shape):
    return ",".join(str(int(d)) for d in shape)


# ----------------------------------------------------------------------------- report

@dataclass(frozen=True)
class LayerRow:
    """One function of the network. ``latency`` is in the report's unit."""

    index: int
    layer: str
    type_name: str
    latency: float
    share_percent: float
    params: int
    activation_bytes: int
    flops: Optional[int]


@dataclass
class NetworkReport:
    """Per-layer costs and totals of one network.

    Attributes:
        rows: one :class:`LayerRow` per function, in execution order.
        unit: time unit of every latency (``m``, ``u`` or ``n``: ms, us, ns).
        layer_latency: the layer-based estimate (the rows' latencies added up).
        true_latency: the Profiler's latency of the whole network (one forward).
        param_count, param_bytes: parameters of the graph (float32 bytes).
        activation_peak_bytes, activation_total_bytes: activation memory of one forward.
        flops, macs: compute of the known functions; ``unknown_flops`` lists functions
            without a formula (left out of the totals).
        input_shapes, ext_name, device_id, fingerprint: what was measured and where.
    """

    source: str
    name: str
    unit: str
    rows: List[LayerRow]
    layer_latency: float
    true_latency: float
    param_count: int
    param_bytes: int
    activation_peak_bytes: int
    activation_total_bytes: int
    flops: int
    macs: int
    unknown_flops: Tuple[str, ...]
    input_shapes: List[Tuple[int, ...]]
    ext_name: str
    device_id: int
    fingerprint: str
    measurements: int = 0

    @property
    def unit_name(self):
        return UNIT_NAMES[self.unit]

    def to_dict(self):
        d = asdict(self)
        d["unit_name"] = self.unit_name
        return d


def _param_scope_of(f, names):
    for v in f.inputs[1:]:
        if v in names:
            return os.path.dirname(names[v]) or names[v]
    return ""


def build_report(network, estimator, n_run=100, true_latency=None):
    """Measures ``network`` (a :class:`LoadedNetwork`) and returns a :class:`NetworkReport`.

    Args:
        network: the loaded network.
        estimator: a :class:`~nas_hw.estimators.graph.LatencyGraphEstimator` whose
            ``batch_size`` is the network's batch size and ``on_error`` is ``'raise'``.
        n_run: timed runs of the true-latency measurement (Profiler).
        true_latency: a precomputed true latency in the estimator's unit (skips the Profiler).

    Raises:
        MeasurementError: a function could not be measured.
    """
    from .estimators.memory import activation_memory, count_flops, dtype_bytes, parameters_of
    from .estimators.network import Profiler

    out = network.output
    with nn.parameter_scope("", scope=network.parameters):
        funcs = functions_of(out)
        measured_before = estimator.cache.measurements
        layer_latency = estimator.get_estimation(out, inputs=network.inputs)
        breakdown = list(estimator.breakdown)
        if len(breakdown) != len(funcs):
            raise RuntimeError(f"the estimator reported {len(breakdown)} layers for {len(funcs)} "
                               "functions; use on_error='raise' for a report")
        memory = activation_memory(out)
        flops = count_flops(out, on_unknown="list")
        params = parameters_of(out)
        names = {v: k for k, v in nn.get_parameters(grad_only=False).items()}
        if true_latency is None:
            profiler = Profiler(out, device_id=estimator.device_id, ext_name=estimator.ext_name,
                                n_run=n_run, n_warmup=estimator.n_warmup,
                                max_measure_execution_time=estimator.max_measure_execution_time,
                                time_scale=estimator.time_scale, outlier=estimator.outlier,
                                per_function=False)
            with nn.context_scope(estimator.ctx):
                true_latency = profiler.run()["forward_all"]
    param_set = set(params)
    counted = set()
    rows = []
    for i, (f, cost) in enumerate(zip(funcs, breakdown)):
        n_params = 0
        for v in f.inputs:
            if v in param_set and v not in counted:
                counted.add(v)
                n_params += int(_numel(v.shape))
        scope = _param_scope_of(f, names)
        share = 100.0 * cost.latency / layer_latency if layer_latency > 0 else 0.0
        rows.append(LayerRow(i, scope or f.info.type_name, f.info.type_name, cost.latency, share,
                             n_params, memory.per_function[i].new_bytes, flops.per_function[i].flops))
    param_count = sum(int(_numel(v.shape)) for v in params)
    return NetworkReport(
        source=network.source, name=network.name, unit=estimator.time_scale, rows=rows,
        layer_latency=float(layer_latency), true_latency=float(true_latency),
        param_count=param_count, param_bytes=param_count * dtype_bytes("float32"),
        activation_peak_bytes=memory.peak_bytes, activation_total_bytes=memory.total_bytes,
        flops=flops.flops, macs=flops.macs, unknown_flops=tuple(flops.unknown),
        input_shapes=[tuple(int(d) for d in v.shape) for v in network.inputs],
        ext_name=estimator.ext_name, device_id=estimator.device_id,
        fingerprint=estimator.fingerprint_key,
        measurements=estimator.cache.measurements - measured_before)


def _numel(shape):
    n = 1
    for d in shape:
        n *= int(d)
    return n


# ----------------------------------------------------------------------------- output

def csv_header(unit):
    """Column names of ``report.csv`` for the time unit ``unit``."""
    return ["index", "layer", "type", f"latency_{UNIT_NAMES[unit]}", "share_percent", "params",
            "activation_bytes", "flops"]


def write_csv(report, path):
    """Writes the per-layer rows (full float precision; empty ``flops`` = no formula)."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(csv_header(report.unit))
        for r in report.rows:
            w.writerow([r.index, r.layer, r.type_name, repr(r.latency), repr(r.share_percent),
                        r.params, r.activation_bytes, "" if r.flops is None else r.flops])


def write_json(report, path):
    """Writes rows and totals as JSON."""
    with open(path, "w") as fh:
        json.dump(report.to_dict(), fh, indent=1)


def require_matplotlib():
    """Imports matplotlib with the Agg backend.

    Raises:
        DependencyMissingError: matplotlib is not installed (``pip install 'nas_hw[examples]'``).
    """
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise DependencyMissingError(f"the PNG chart needs matplotlib, which is not installed "
                                     f"({err}); install it with: {EXTRA_HINT}") from err
    return plt


def top_rows(report, top):
    """The ``top`` slowest rows, slowest first."""
    return sorted(report.rows, key=lambda r: (-r.latency, r.index))[:top]


def write_bar_chart(report, path, top=10):
    """Writes a horizontal bar chart of the ``top`` slowest layers (PNG, matplotlib Agg)."""
    plt = require_matplotlib()
    rows = top_rows(report, top)
    labels = [f"{r.index}: {r.layer}" + (f" ({r.type_name})" if r.layer != r.type_name else "")
              for r in rows]
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(rows) + 1.6))
    try:
        y = list(range(len(rows)))
        ax.barh(y, [r.latency for r in rows], color="tab:blue")
        ax.set_yticks(y)
        ax.set_yticklabels(labels, fontsize=8)
        ax.invert_yaxis()  # slowest on top
        for yi, r in zip(y, rows):
            ax.text(r.latency, yi, f" {r.share_percent:.1f}%", va="center", fontsize=7)
        ax.set_xlabel(f"latency ({report.unit_name}, layer-based)")
        ax.set_title(f"{report.name}: top {len(rows)} of {len(report.rows)} layers; "
                     f"sum {report.layer_latency:.4g} {report.unit_name}, "
                     f"true {report.true_latency:.4g} {report.unit_name}", fontsize=9)
        fig.tight_layout()
        fig.savefig(path, format="png", dpi=100)
    finally:
        plt.close(fig)


def format_table(report):
    """The report as text: one line per layer, then the totals."""
    u = report.unit_name
    head = ["#", "layer", "type", f"latency_{u}", "share_%", "params", "act_bytes", "flops"]
    body = [[str(r.index), r.layer, r.type_name, f"{r.latency:.4f}", f"{r.share_percent:.1f}",
             str(r.params), str(r.activation_bytes), "-" if r.flops is None else str(r.flops)]
            for r in report.rows]
    widths = [max(len(row[k]) for row in [head] + body) for k in range(len(head))]
    left = {1, 2}

    def line(cells):
        return "  ".join(c.ljust(w) if k in left else c.rjust(w)
                         for k, (c, w) in enumerate(zip(cells, widths))).rstrip()

    shapes = "; ".join(_shape_str(s) for s in report.input_shapes) or "none"
    ratio = (f"{report.layer_latency / report.true_latency:.2f}" if report.true_latency > 0 else "n/a")
    lines = [f"network {report.name!r} from {report.source} | input {shapes} | device "
             f"{report.ext_name}:{report.device_id} | latency unit {u}", line(head)]
    lines += [line(b) for b in body]
    flops_note = (f" (no formula for {sorted(set(report.unknown_flops))}: left out)"
                  if report.unknown_flops else "")
    lines += [
        f"layers: {len(report.rows)}",
        f"latency, layer-based estimate (sum of the rows): {report.layer_latency:.4f} {u}",
        f"latency, true (Profiler, whole network):         {report.true_latency:.4f} {u}"
        f"  (estimate / true = {ratio})",
        f"parameters: {report.param_count} ({report.param_bytes} bytes as float32)",
        f"activation memory: peak {report.activation_peak_bytes} bytes, total "
        f"{report.activation_total_bytes} bytes (float32)",
        f"compute: {report.flops} FLOPs ({report.macs} MACs){flops_note}",
        f"layer measurements taken: {report.measurements} (the rest came from the cache)",
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- CLI

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
    parser.add_argument("--n-run", type=int, default=100,
                        help="timed runs per layer and for the true latency (default 100)")
    parser.add_argument("--n-warmup", type=int, default=10, help="untimed runs first (default 10)")
    parser.add_argument("--max-measure-execution-time", type=float, default=1.0, metavar="SECONDS",
                        help="time budget per measurement in seconds (default 1)")
    parser.add_argument("--time-scale", default="m", choices=TIME_SCALES,
                        help="latency unit: m (ms), u (us), n (ns) (default m)")
    parser.add_argument("--cache", default=None, metavar="PATH",
                        help="latency cache file (default $NAS_HW_CACHE or the per-user cache)")
    parser.add_argument("--out", default=".", metavar="DIR",
                        help=f"directory for {CSV_NAME}, {JSON_NAME} and {PNG_NAME} (default: .)")
    parser.add_argument("--top", type=int, default=10, metavar="K",
                        help="layers in the bar chart, slowest first (default 10)")
    return parser


def _error(message, code):
    sys.stderr.write(f"nas-hw: error: {message}\n")
    return code


def run(args):
    """Runs ``nas-hw report`` with parsed ``args``; returns the exit code."""
    from .device import get_context
    from .estimators.graph import LatencyGraphEstimator

    try:
        if args.top < 1:
            raise NetworkInputError(f"--top must be >= 1, got {args.top}")
        if args.n_run < 1:
            raise NetworkInputError(f"--n-run must be >= 1, got {args.n_run}")
        if os.path.exists(args.out) and not os.path.isdir(args.out):
            raise NetworkInputError(f"--out {args.out!r} exists and is not a directory")
        input_shape = None if args.input_shape is None else parse_input_shape(args.input_shape)
        require_matplotlib()  # fail before measuring anything
        ctx = get_context(args.ext_name, args.device_id)
        with nn.context_scope(ctx):
            network = load_network(args.network, input_shape)
        batches = {int(v.shape[0]) for v in network.inputs if len(v.shape)}
        if len(batches) > 1:
            raise NetworkInputError(f"the inputs of {args.network!r} disagree on the batch size "
                                    f"({[tuple(v.shape) for v in network.inputs]})")
        estimator = LatencyGraphEstimator(
            device_id=args.device_id, ext_name=args.ext_name, n_run=args.n_run,
            n_warmup=args.n_warmup, max_measure_execution_time=args.max_measure_execution_time,
            time_scale=args.time_scale, cache=args.cache, batch_size=batches.pop() if batches else 1)
    except NetworkInputError as err:
        return _error(str(err), 2)
    except DependencyMissingError as err:
        return _error(str(err), 1)
    except (ValueError, TypeError) as err:  # option values refused by the estimator
        return _error(str(err), 2)
    except NasHwError as err:
        return _error(str(err), 1)
    try:
        with nn.context_scope(ctx):
            report = build_report(network, estimator, n_run=args.n_run)
        os.makedirs(args.out, exist_ok=True)
        csv_path = os.path.join(args.out, CSV_NAME)
        json_path = os.path.join(args.out, JSON_NAME)
        png_path = os.path.join(args.out, PNG_NAME)
        write_csv(report, csv_path)
        write_json(report, json_path)
        write_bar_chart(report, png_path, args.top)
    except (NasHwError, OSError) as err:
        return _error(str(err), 1)
    finally:
        estimator.cache.close()
    sys.stdout.write(format_table(report) + "\n")
    sys.stdout.write(f"wrote {csv_path}, {json_path}, {png_path}\n")
    return 0


def main(argv=None):
    """``python -m nas_hw.report NETWORK [options]``."""
    parser = argparse.ArgumentParser(prog="nas-hw report", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
