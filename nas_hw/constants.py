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


def time_factor(from_scale, to_scale):
    """The factor converting a time in ``from_scale`` units to ``to_scale`` units."""
    return TIME_SCALES[to_scale] / TIME_SCALES[from_scale]


def unit_name(time_scale):
    """``'ms'`` for ``'m'``, and so on (the time scale must be valid)."""
    return TIME_UNITS[time_scale]

# -- the timing core's rule (nas_hw/measure/timing.py; chosen with benchmarks/statistic.py) --
#: The robust per-layer statistic served as a latency everywhere (TimingStats.value).
ROBUST_STATISTIC = "minimum of the runs (taken in rounds)"
#: Rounds a measurement's timed runs are split into (fewer when n_run or the budget is smaller).
TIMING_ROUNDS = 5
#: Seconds the measuring process sleeps before each round: it gives the core up, so each round
#: starts on a fresh scheduler time slice instead of where a competing process preempted it.
ROUND_PAUSE_S = 0.002
#: A measurement whose spread (how far its median round minimum lies above its value, relative
#: to the value) is above this is disturbed...
SPREAD_LIMIT = 0.05
#: ...unless the median round lies less than this many seconds above the value (the jitter of a
#: function of a few microseconds is no disturbance).
SPREAD_FLOOR_S = 2e-6
#: A round is taken at full speed when the CPU speed probe (nas_hw.measure.load.SpeedProbe)
#: before and after it ran at most this much slower than its best; a measurement with fewer than
#: half of its rounds at full speed is disturbed.
SLOW_LIMIT = 1.25
#: Spread is judged only with at least this many rounds of at least two runs each.
MIN_JUDGED_ROUNDS = 3
#: Times a disturbed measurement is taken again before it is kept, flagged.
MAX_REPEATS = 4
#: Seconds waited before the k-th repeat (k times this; 0.5 s in all at most): a burst of load,
#: or a spell of slowed cores (tens to hundreds of ms on a shared machine), may pass meanwhile.
REPEAT_PAUSE_S = 0.05
#: A re-measured row more than this far (relative) from its stored value has drifted
#: (``nas-hw cache verify``).
DRIFT_LIMIT = 0.20
