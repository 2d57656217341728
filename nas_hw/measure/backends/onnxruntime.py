"""The ``onnxruntime`` backend: layers and networks exported to ONNX and timed on ONNX Runtime.

Needs the ``onnx`` extra (``pip install 'nas_hw[onnx]'``). Every choice that changes a timing
is explicit and part of the fingerprint: the execution provider (``CPUExecutionProvider``
here; ``CUDAExecutionProvider`` / ``TensorrtExecutionProvider`` where the installed
onnxruntime has them), the intra-op threads, the graph optimization level, the opset and the
exporter's version. Units are the runtime's fused kernels (:mod:`.fusion`).

How things are timed:
- one ``InferenceSession`` per unit, module or network, sequential execution, inputs drawn
  once from a seeded normal distribution (a network's inputs keep the data you set), inputs and
  outputs bound once (``IOBinding``) so each timed run is the runtime's own work;
- a unit is timed as several copies side by side in one session (up to :data:`MAX_COPIES`,
  enough to make a run last about :data:`UNIT_RUN_S`), and its statistics are those of one
  copy: the runtime's fixed cost of a call (a few microseconds, as much as a small kernel) is
  paid once per network, not once per kernel, so it must not be paid once per unit either;
- at the ``all`` level the runtime runs convolutions and pooling in a blocked channel layout
  (NCHWc): inside a network, tensors stay blocked from one kernel to the next, but a unit run
  alone converts its inputs and outputs (``ReorderInput`` / ``ReorderOutput`` kernels), which
  can cost as much as the unit itself at small sizes. The runtime's own profiler says which
  share of the unit's run those conversions take (a few profiled runs per unit), and that share
  is taken off;
- a unit whose optimized graph runs nothing (folded constants, an identity) is a no-op.
"""
import json
import logging
import math
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass

import numpy as np

from ...checks import check_bool, check_int, check_one_of
from ...constants import ONNX_OPSET, ORT_OPTIMIZATION_LEVELS
from ...errors import BackendUnavailableError, MeasurementError, UnsupportedOperationError
from ...nnabla_nas_compat import call_module
from ..device import _cpu_name, _gpu_name
from ..graph import functions_between, functions_of
from .base import MeasuringBackend, Prepared
from .extras import import_onnx, import_onnxruntime
from .fusion import fused_units, graph_inputs
from .onnx_export import export, replicated

logger = logging.getLogger(__name__)

#: Short names accepted for the execution providers nas_hw knows how to bind.
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
             "tensorrt": "TensorrtExecutionProvider"}
#: Bumped whenever the exporter's output for a function changes (it is part of the fingerprint).
EXPORTER_VERSION = 1
#: At most this many copies of a unit run side by side in one timed call.
MAX_COPIES = 8
#: A unit gets enough copies for one timed call to last about this long (seconds).
UNIT_RUN_S = 1e-3
#: Kernels converting to and from the blocked layout, needed by a unit alone, not in a network.
LAYOUT_OPS = ("ReorderInput", "ReorderOutput")
#: Profiled runs of a unit are enough to last about this long (seconds), within [10, 100] runs.
PROFILE_S = 0.05
#: The layout transformation renames every tensor it touches (and converts nodes one for one):
#: the fusion analysis runs without it, so the optimized graph keeps the exported names.
_RENAMING_OPTIMIZERS = ("NchwcTransformer",)


@dataclass(frozen=True)
class OrtFingerprint:
    """What makes one ONNX Runtime set-up's measurements differ from another's."""

    backend: str
    device: str
    runtime: str
    provider: str
    optimization: str
    threads: str
    opset: int
    exporter: int
    type_config: str = "float"

    @property
    def key(self):
        """A stable readable string, e.g. ``onnxruntime|CPUExecutionProvider|AMD EPYC|ort=1.23.2|...``."""
        return "|".join([self.backend, self.provider, self.device, f"ort={self.runtime}",
                         f"opt={self.optimization}", f"threads={self.threads}", f"opset={self.opset}",
                         f"export={self.exporter}", self.type_config])

    def as_dict(self):
        return asdict(self)

    def __str__(self):
        return self.key


def resolve_provider(provider, ort):
    """The full provider name for ``provider`` (a short name or a full one), checked to be
    available in this onnxruntime; otherwise a one-line error naming the available ones."""
    if not isinstance(provider, str) or not provider:
        raise ValueError(f"provider must be one of {tuple(PROVIDERS)} or a full ONNX Runtime provider "
                         f"name, got {provider!r}")
    full = PROVIDERS.get(provider.lower(), provider)
    known = set(ort.get_all_providers())
    if full not in known:
        raise ValueError(f"provider must be one of {tuple(PROVIDERS)} or an ONNX Runtime provider name "
                         f"({sorted(known)}), got {provider!r}")
    available = ort.get_available_providers()
    if full not in available:
        raise BackendUnavailableError(
            f"execution provider {full} is not available in onnxruntime {ort.__version__} here; "
            f"available: {available} (CUDA / TensorRT need the onnxruntime-gpu package and a GPU)")
    return full


class OrtBackend(MeasuringBackend):
    """Times exported graphs on ONNX Runtime.

    Args:
        provider: ``cpu``, ``cuda``, ``tensorrt`` or a full provider name
            (``CPUExecutionProvider``...); it must be available in the installed onnxruntime.
        threads: ``intra_op_num_threads`` (>= 1; 1 by default: reproducible on shared machines).
        optimization: graph optimization level, one of ``disabled``, ``basic``, ``extended``,
            ``all`` (ONNX Runtime's default, what a deployment gets).
        device_id: the GPU index for ``cuda`` / ``tensorrt`` (ignored on ``cpu``).
        type_config: ``float`` only (the exporter writes float32 graphs).
        seed: seed of the random inputs.
        fuse: measure the runtime's fused kernels as units (True, the default); False measures
            every nnabla function alone (the naive per-function sum, for comparison).

    Raises:
        BackendUnavailableError: onnx / onnxruntime are not installed, or the provider is not
            available (the message names the available ones).
        ValueError: an argument is not one of the allowed values.
    """

    name = "onnxruntime"

    def __init__(self, provider="cpu", threads=1, optimization="all", device_id=0, type_config="float",
                 seed=0, fuse=True):
        self.threads = check_int("threads", threads, low=1)
        self.optimization = check_one_of("optimization", optimization, ORT_OPTIMIZATION_LEVELS)
        self.device_id = check_int("device_id", device_id, low=0)
        self.type_config = check_one_of("type_config", type_config, ("float",))
        self.seed = check_int("seed", seed, low=0)
        self.fuse = check_bool("fuse", fuse)
        self.ort = import_onnxruntime()
        self.onnx = import_onnx()
        self.provider = resolve_provider(provider, self.ort)
        self.opset = ONNX_OPSET
        self._on_gpu = self.provider != "CPUExecutionProvider"
        self._fingerprint = None

    # -- identity -------------------------------------------------------------------------
    @property
    def fingerprint(self):
        if self._fingerprint is None:
            device = _gpu_name(self.device_id) if self._on_gpu else _cpu_name()
            self._fingerprint = OrtFingerprint("onnxruntime", device, self.ort.__version__, self.provider,
                                               self.optimization, f"intra:{self.threads}", self.opset,
                                               EXPORTER_VERSION, self.type_config)
        return self._fingerprint

    @property
    def settings(self):
        return {"backend": self.name, "provider": self.provider, "threads": self.threads,
                "optimization": self.optimization, "device_id": self.device_id, "opset": self.opset,
                "fuse": self.fuse}

    # -- sessions ---------------------------------------------------------------------------
    def _options(self, optimized_path=None):
        ort = self.ort
        so = ort.SessionOptions()
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel,
                                              ORT_OPTIMIZATION_LEVELS[self.optimization])
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.log_severity_level = 3  # errors only: ORT writes its warnings to stderr itself
        if optimized_path is not None:
            so.optimized_model_filepath = optimized_path
        return so

    def _providers(self):
        if not self._on_gpu:
            return [self.provider]
        return [(self.provider, {"device_id": self.device_id}), "CPUExecutionProvider"]

    def session(self, exported, optimized_path=None, disabled_optimizers=()):
        """An ``InferenceSession`` of ``exported``; a model the runtime refuses raises an error
        naming the nnabla functions behind the nodes it names."""
        try:
            return self.ort.InferenceSession(exported.serialized(), self._options(optimized_path),
                                             providers=self._providers(),
                                             disabled_optimizers=list(disabled_optimizers))
        except Exception as err:
            raise _runtime_error(err, exported, "load") from err

    def _optimized(self, exported, disabled_optimizers=()):
        """``(session, optimized onnx.ModelProto)``: the session and the graph it runs."""
        tmp = tempfile.mkdtemp(prefix="nas_hw_ort_")
        try:
            path = os.path.join(tmp, "optimized.onnx")
            sess = self.session(exported, path, disabled_optimizers)
            return sess, self.onnx.load(path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _bound_run(self, sess, exported, feeds=None):
        """A callable running ``sess`` once on bound inputs and outputs."""
        ort = self.ort
        if feeds is None:
            rng = np.random.default_rng(self.seed)
            feeds = {n: rng.standard_normal(s).astype(np.float32)
                     for n, s in zip(exported.input_names, exported.input_shapes)}
        try:
            outs = sess.run(exported.output_names, feeds)
        except Exception as err:
            raise _runtime_error(err, exported, "run") from err
        device = "cuda" if self._on_gpu else "cpu"
        binding = sess.io_binding()
        keep = [feeds, outs]  # CPU OrtValues wrap these arrays without copying them
        for name, array in feeds.items():
            keep.append(ort.OrtValue.ortvalue_from_numpy(array, device, self.device_id))
            binding.bind_ortvalue_input(name, keep[-1])
        for name, array in zip(exported.output_names, outs):
            keep.append(ort.OrtValue.ortvalue_from_numpy(np.asarray(array), device, self.device_id))
            binding.bind_ortvalue_output(name, keep[-1])

        def run(sess=sess, binding=binding, keep=keep):  # keep: the bound buffers live as long as run
            sess.run_with_iobinding(binding)
        return run

    # -- the backend contract ----------------------------------------------------------------
    def units(self, funcs, inputs, outputs):
        """The runtime's fused kernels: from the graph it optimizes (:func:`.fusion.fused_units`);
        one function each with ``fuse=False``."""
        if not self.fuse:
            return [[i] for i in range(len(funcs))]
        if not funcs:
            return []
        exported = export(funcs, inputs, outputs, opset=self.opset)
        _, optimized = self._optimized(exported, _RENAMING_OPTIMIZERS)
        return fused_units(exported, optimized, len(funcs))

    def prepare_functions(self, funcs, inputs, outputs, input_shapes):
        exported = export(funcs, inputs, outputs, input_shapes, opset=self.opset)
        return self._prepare_unit(exported)

    def _prepare_unit(self, exported):
        sess, optimized = self._optimized(exported)
        layout = sum(1 for node in optimized.graph.node if node.op_type in LAYOUT_OPS)
        n_kernels = len(optimized.graph.node) - layout
        if n_kernels == 0:
            return Prepared(noop=True, n_kernels=0)
        run = self._bound_run(sess, exported)
        one_run_s = _fastest(run)
        copies = int(min(MAX_COPIES, max(1, math.ceil(UNIT_RUN_S / max(one_run_s, 1e-9)))))
        many = replicated(exported, copies)
        if copies > 1:
            run = self._bound_run(self.session(many), many)
        share = 1.0
        if layout:
            n = int(min(100, max(10, math.ceil(PROFILE_S / max(one_run_s * copies, 1e-9)))))
            share = 1.0 - self._layout_share(many, n)
        return Prepared(run, copies=copies, share=share, n_kernels=n_kernels)

    def _layout_share(self, exported, n_runs):
        """The share of ``exported``'s kernel time the runtime's profiler gives to layout
        conversions, over ``n_runs`` profiled runs."""
        tmp = tempfile.mkdtemp(prefix="nas_hw_ort_")
        try:
            so = self._options()
            so.enable_profiling = True
            so.profile_file_prefix = os.path.join(tmp, "profile")
            sess = self.ort.InferenceSession(exported.serialized(), so, providers=self._providers())
            run = self._bound_run(sess, exported)
            for _ in range(n_runs):
                run()
            with open(sess.end_profiling()) as f:
                events = json.load(f)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        total = layout = 0
        for e in events:
            if e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time"):
                total += e.get("dur", 0)
                if e.get("args", {}).get("op_name") in LAYOUT_OPS:
                    layout += e.get("dur", 0)
        if total <= 0:
            raise MeasurementError("onnxruntime's profile of the unit holds no kernel time, so the share of "
                                   "its layout conversions cannot be taken off")
        return min(layout / total, 0.95)

    def prepare_module(self, module, input_shapes):
        import nnabla as nn

        with nn.auto_forward(False):
            inputs = [nn.Variable(tuple(s), need_grad=False) for s in input_shapes]
            out = call_module(module, inputs)
        outs = [v for v in (out if isinstance(out, (list, tuple)) else [out]) if isinstance(v, nn.Variable)]
        inside = set(functions_between(outs, inputs)) if outs else set()
        if not inside:
            return Prepared(noop=True, n_kernels=0)
        import nnabla.functions as F

        with nn.auto_forward(False):
            sink = outs[0] if len(outs) == 1 else F.sink(*outs)
        funcs = [f for f in functions_of(sink) if f in inside]
        return self._prepare_unit(export(funcs, inputs, outs, opset=self.opset))

    def prepare_network(self, output, inputs=None):
        funcs = functions_of(output)
        inputs = graph_inputs(funcs) if inputs is None else list(inputs)
        if not inputs:  # every leaf a constant: the runtime would fold the network away (a silent 0)
            raise MeasurementError("the network has no input the runtime is fed: every leaf is a parameter "
                                   "(registered or needing a gradient); give its inputs explicitly")
        exported = export(funcs, inputs, [output], opset=self.opset)
        rng = np.random.default_rng(self.seed)
        feeds = {name: (np.asarray(v.d, dtype=np.float32) if v.data.modification_count
                        else rng.standard_normal(v.shape).astype(np.float32))
                 for name, v in zip(exported.input_names, inputs)}
        return Prepared(self._bound_run(self.session(exported), exported, feeds), n_kernels=None)


def _fastest(run):
    """The fastest of a few runs (seconds), the first (which allocates) left out."""
    best = float("inf")
    for i in range(5):
        t0 = time.perf_counter()
        run()
        if i:
            best = min(best, time.perf_counter() - t0)
    return best


def _runtime_error(err, exported, what):
    """The runtime's refusal as an nas_hw error naming the nnabla functions of the nodes it names."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
    named = sorted({name.split(":")[1] for name in exported.node_function if name in str(err)})
    if named:
        return UnsupportedOperationError(f"onnxruntime cannot {what} nnabla function(s) {named}: {text}",
                                         functions=named)
    return MeasurementError(f"onnxruntime cannot {what} the exported graph: {text}")
