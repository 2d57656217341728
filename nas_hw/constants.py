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
#: How an architecture is derived from the alphas (nas_hw/nas/choices.py).
DERIVATION_RULES = ("argmax", "darts")
#: Modes of the expected-cost penalty.
PENALTY_MODES = ("linear", "hinge", "log")
#: Search algorithms of nas_hw's own loop.
ALGORITHMS = ("darts", "proxyless")
#: Solvers of the search and retraining loops.
OPTIMIZERS = ("momentum", "sgd", "adam")
#: Epoch metrics a budget checkpoint may maximise (every search logs them).
BUDGET_MONITORS = ("valid_acc", "train_acc")
#: Metrics a candidate table holds.
TABLE_METRICS = ("latency", "param_bytes", "n_layers")

#: Bytes per element of the dtypes nas_hw counts.
DTYPE_BYTES = {
    "float32": 4, "float": 4, "float16": 2, "half": 2, "bfloat16": 2, "float64": 8,
    "double": 8, "int8": 1, "uint8": 1, "int16": 2, "int32": 4, "int64": 8,
}

#: Upper bounds of settings: a typo such as ``n_run=1000000000`` is refused in one line, before
#: anything is measured or trained, instead of running for days or exhausting memory.
#: Timed runs, and untimed warm-up runs, per measurement.
MAX_N_RUN = 10**5
MAX_N_WARMUP = 10**5
#: Time budget of one measurement, in seconds.
MAX_MEASURE_TIME_S = 3600.0
#: Epochs of a search or of a retraining (warm-up included).
MAX_EPOCHS = 10**5
#: Samples per training batch, and the batch axis of a deployment input shape.
MAX_BATCH_SIZE = 2**16
#: Elements of one input tensor (a deployment shape N*C*H*W), 1 GiB as float32.
MAX_INPUT_ELEMENTS = 2**28
#: Paths sampled per ProxylessNAS architecture step.
MAX_N_SAMPLES = 1000
#: Weights of a penalty or a constraint, and the penalty's ``a`` / ``b`` (larger ones overflow float32).
MAX_PENALTY_WEIGHT = 1e6
#: Learning rates; weight decays.
MAX_LR = 10.0
MAX_WEIGHT_DECAY = 1.0
#: Channels of a search space's layer; blocks of a stage, cells, nodes of a cell.
MAX_CHANNELS = 2**14
MAX_BLOCKS = 256
#: Kernel sizes, and expansion ratios, of a search space's candidates.
MAX_KERNEL = 31
MAX_EXPANSION = 64
#: Random seeds (the search derives per-choice-point seeds as ``seed * 1000 + i`` < 2**32).
MAX_SEED = 10**6
#: Device indices.
MAX_DEVICE_ID = 1023
#: Bytes of a file name (the usual file-system limit).
MAX_FILENAME_BYTES = 255

#: Bytes of a search checkpoint's ``state.json`` read on a resume (epochs, history, callback states).
CHECKPOINT_MAX_STATE_BYTES = 64 * 2**20

#: Limits of reading an nnabla ``.nnp`` archive (``nas-hw report``; :class:`~nas_hw.report.nnp.NnpLimits`):
#: bytes decompressed from its network-definition members (.nntxt / .prototxt), all together.
NNP_MAX_BYTES = 16 * 2**20
#: Members an archive may hold (its central directory is bounded before it is parsed).
NNP_MAX_MEMBERS = 1000
#: Uncompressed / compressed size of one member read, checked for members of at least
#: ``NNP_RATIO_MIN_BYTES`` (a few KiB of text compress far better than a real definition).
NNP_MAX_RATIO = 200.0
NNP_RATIO_MIN_BYTES = 2**20
#: Tensors (parameters and activations, float32) the network declares at the report's batch size.
NNP_MAX_NETWORK_BYTES = 512 * 2**20
#: Functions, and variables, of the network once its loops are expanded (each).
NNP_MAX_GRAPH_NODES = 100_000

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
#: The longest a measuring job waits for a quiet machine (``wait_for_quiet``, seconds): one day.
MAX_WAIT_FOR_QUIET_S = 86400.0
#: A re-measured row more than this far (relative) from its stored value has drifted
#: (``nas-hw cache verify``).
DRIFT_LIMIT = 0.20
