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


# -- latency store: what a stored row may hold (nas_hw/measure/store/rows.py checks them) ----------
#: SQLite ``application_id`` marking a nas_hw latency cache ("NASH" in ASCII).
CACHE_APPLICATION_ID = 0x4E415348
#: The store's schema version (``PRAGMA user_version`` of a schema-2 cache).
CACHE_SCHEMA_VERSION = 2
#: Largest time (seconds) a stored statistic may hold: one run of one layer or network.
MAX_TIMING_S = 3600.0
#: Largest run / round count of one stored measurement.
MAX_RUNS = 10 ** 6
#: Largest stored load average and relative spread (finite bounds: nothing overflows to inf).
MAX_LOAD = 1e6
MAX_SPREAD = 1e6
#: Largest number of other measuring processes a row may record.
MAX_PEERS = 10 ** 6
#: Oldest plausible row time (2000-01-01 UTC) and how far in the future an incoming row may be.
OLDEST_ROW_TIME_S = 946684800.0
MAX_FUTURE_S = 86400.0
#: Largest fingerprint and signature (characters) and settings / fingerprint description (bytes of JSON).
MAX_FINGERPRINT_CHARS = 1024
MAX_SIGNATURE_CHARS = 16384
MAX_SETTINGS_BYTES = 65536
#: Largest import files, checked before parsing: a JSON file is parsed whole (memory ~10x its
#: size), a CSV file is streamed line by line (memory bounded by the longest line).
MAX_IMPORT_JSON_BYTES = 64 * 2 ** 20
MAX_IMPORT_CSV_BYTES = 2 ** 30
MAX_IMPORT_LINE_BYTES = 2 ** 20
