"""Every fixed vocabulary of nas_hw, in one place: time scales and units, devices, modes.

A name here means one thing everywhere. ``TIME_SCALES`` is the seed's ``time_scale``
vocabulary (a letter) mapped to the factor from seconds; ``TIME_UNITS`` names the unit.
"""

#: The seed's ``time_scale`` letters -> factor from seconds ('m': milliseconds...).
TIME_SCALES = {"m": 1e3, "u": 1e6, "n": 1e9}
#: Readable unit name of each time scale.
TIME_UNITS = {"m": "ms", "u": "us", "n": "ns"}

#: nnabla extensions a device is reached through.
EXT_NAMES = ("cpu", "cuda", "cudnn")
#: nnabla type configurations.
TYPE_CONFIGS = ("float", "half", "mixed_half")
#: What a layer estimator does with a layer it cannot measure.
ON_ERROR = ("raise", "warn")
#: Statistics a :class:`~nas_hw.measure.timing.TimingStats` holds ('value': the robust one).
TIMING_STATS = ("value", "mean", "median", "std", "min")

#: nnabla_nas MixedOp modes.
MIXED_OP_MODES = ("full", "sample", "max", "fair")
#: Modes of the expected-cost penalty.
PENALTY_MODES = ("linear", "hinge", "log")
#: Search algorithms of nas_hw's own loop.
ALGORITHMS = ("darts", "proxyless")
#: Solvers of the search and retraining loops.
OPTIMIZERS = ("momentum", "sgd", "adam")
#: Metrics a candidate table holds.
TABLE_METRICS = ("latency", "param_bytes", "n_layers")

#: Bytes per element of the dtypes nas_hw counts.
DTYPE_BYTES = {
    "float32": 4, "float": 4, "float16": 2, "half": 2, "bfloat16": 2, "float64": 8,
    "double": 8, "int8": 1, "uint8": 1, "int16": 2, "int32": 4, "int64": 8,
}

#: The extra that brings the GPU extension.
CUDA_INSTALL_HINT = "pip install 'nas_hw[cuda]' (installs nnabla-ext-cuda120)"

#: Measuring backends: where layers and networks are timed (nnabla's own kernels, or the
#: network exported to ONNX and run by ONNX Runtime).
BACKENDS = ("nnabla", "onnxruntime")
#: The extra that brings the ONNX Runtime backend.
ONNX_INSTALL_HINT = "pip install 'nas_hw[onnx]' (installs onnx and onnxruntime)"
#: The ONNX opset of the default domain nas_hw exports (onnx 1.13 knows up to 18).
ONNX_OPSET = 13
#: ONNX Runtime graph optimization levels, by nas_hw's name ('all' is ONNX Runtime's default).
ORT_OPTIMIZATION_LEVELS = {"disabled": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC",
                           "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}


def time_factor(from_scale, to_scale):
    """The factor converting a time in ``from_scale`` units to ``to_scale`` units."""
    return TIME_SCALES[to_scale] / TIME_SCALES[from_scale]


def unit_name(time_scale):
    """``'ms'`` for ``'m'``, and so on (the time scale must be valid)."""
    return TIME_UNITS[time_scale]
