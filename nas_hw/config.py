"""Structured configs of the search (``examples/search.py``), stored in Hydra's ConfigStore.

Each dataclass is the schema of one config group; the YAML files under ``conf/`` extend them
(``defaults: [<schema>, _self_]``). A wrong type (``latency.weight=abc``) or a misspelt key
(``latency.wieght=0.1``) fails when Hydra composes the config; values with a fixed set of
choices (``latency.mode``, ``device.ext_name``...) are checked by the dataclasses'
``__post_init__``, which :func:`validate` runs (``OmegaConf.to_object``) at the start of a run,
so a bad value fails with a one-line message naming the allowed values.

Hydra configs only describe objects: everything they build works without Hydra.
"""
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

ALGORITHMS = ("darts", "proxyless")
PENALTY_MODES = ("linear", "hinge", "log")
OPTIMIZERS = ("momentum", "sgd", "adam")
EXT_NAMES = ("cpu", "cuda", "cudnn")
DATASETS = ("digits", "cifar10")
TIME_SCALES = ("m",)  # the table, the penalty and the reports are all in ms
TYPE_CONFIGS = ("float", "half", "mixed_half")


def _one_of(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def _finite(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")


def _positive(name, value, allow_zero=False):
    _finite(name, value)
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")


@dataclass
class EstimatorConfig:
    """Layer-based latency estimator used to fill the candidate table (``estimator=graph|module``).

    ``device_id``, ``ext_name`` and ``cache`` come from ``device`` and ``cache`` at run time
    (``_partial_``).
    """
    _target_: str = MISSING
    _partial_: bool = True
    n_run: int = 20
    n_warmup: int = 3
    max_measure_execution_time: float = 1.0
    time_scale: str = "m"
    outlier: float = 0.0

    def __post_init__(self):
        _positive("estimator.n_run", self.n_run)
        _positive("estimator.n_warmup", self.n_warmup, allow_zero=True)
        _positive("estimator.max_measure_execution_time", self.max_measure_execution_time)
        _one_of("estimator.time_scale", self.time_scale, TIME_SCALES)
        if not 0 <= self.outlier < 0.5:
            raise ValueError(f"estimator.outlier must be in [0, 0.5), got {self.outlier!r}")


@dataclass
class LatencyConfig:
    """The latency term of the search.

    ``input_shape`` is the deployment input shape (batch first) at which latencies are
    estimated and measured; ``None`` means batch 1 at the training image shape.
    """
    weight: float = 0.0
    target: Optional[float] = None
    mode: str = "linear"
    a: float = 0.2
    b: float = 0.3
    input_shape: Optional[List[int]] = None
    calibrate: bool = False
    calibration_points: int = 5

    def __post_init__(self):
        _one_of("latency.mode", self.mode, PENALTY_MODES)
        _positive("latency.weight", self.weight, allow_zero=True)
        if self.target is not None:
            _positive("latency.target", self.target)
        if self.mode in ("hinge", "log") and self.target is None:
            raise ValueError(f"latency.mode={self.mode!r} needs latency.target (ms), got None")
        _finite("latency.a", self.a)
        _finite("latency.b", self.b)
        if self.mode == "log":
            _positive("latency.a", self.a)
            _positive("latency.b", self.b)
            if self.target <= 1:
                raise ValueError("latency.mode='log' needs latency.target > 1 (log T must be "
                                 f"positive), got {self.target!r}")
        if not 1 <= self.calibration_points <= 5:
            raise ValueError("latency.calibration_points must be an integer in [1, 5] (whole-network "
                             f"measurements), got {self.calibration_points!r}")
        if self.input_shape is not None:
            if len(self.input_shape) != 4 or any(int(s) <= 0 for s in self.input_shape):
                raise ValueError("latency.input_shape must be 4 positive ints (N, C, H, W), "
                                 f"got {list(self.input_shape)!r}")


@dataclass
class SearchConfig:
    """The search loop (``search=darts|proxyless``)."""
    algorithm: str = MISSING
    epochs: int = 6
    warmup_epochs: int = 2
    batch_size: int = 64
    max_batches: Optional[int] = None
    net_optimizer: str = "momentum"
    net_lr: float = 0.05
    net_momentum: float = 0.9
    net_weight_decay: float = 1e-4
    arch_optimizer: str = "adam"
    arch_lr: float = 3e-3
    arch_weight_decay: float = 1e-3
    n_samples: int = 4
    baseline_decay: float = 0.9
    checkpoint: bool = True
    resume: Optional[str] = None

    def __post_init__(self):
        _one_of("search.algorithm", self.algorithm, ALGORITHMS)
        _one_of("search.net_optimizer", self.net_optimizer, OPTIMIZERS)
        _one_of("search.arch_optimizer", self.arch_optimizer, OPTIMIZERS)
        _positive("search.epochs", self.epochs, allow_zero=True)
        _positive("search.warmup_epochs", self.warmup_epochs, allow_zero=True)
        _positive("search.batch_size", self.batch_size)
        if self.max_batches is not None:
            _positive("search.max_batches", self.max_batches)
        _positive("search.net_lr", self.net_lr)
        _positive("search.arch_lr", self.arch_lr)
        _positive("search.n_samples", self.n_samples)
        if not 0 <= self.baseline_decay < 1:
            raise ValueError(f"search.baseline_decay must be in [0, 1), got {self.baseline_decay!r}")


@dataclass
class RetrainConfig:
    """Training the derived architecture from scratch (``retrain.epochs=0`` skips it)."""
    epochs: int = 20
    batch_size: int = 64
    max_batches: Optional[int] = None
    optimizer: str = "momentum"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 1e-4

    def __post_init__(self):
        _one_of("retrain.optimizer", self.optimizer, OPTIMIZERS)
        _positive("retrain.epochs", self.epochs, allow_zero=True)
        _positive("retrain.batch_size", self.batch_size)
        if self.max_batches is not None:
            _positive("retrain.max_batches", self.max_batches)
        _positive("retrain.lr", self.lr)


@dataclass
class MobileNetSpaceConfig:
    """MobileNetV2-style space (``space=mobilenet``); channels and classes come from the data."""
    _target_: str = "nas_hw.search.spaces.MobileNetSpace"
    stem_channels: int = 8
    stage_channels: List[int] = field(default_factory=lambda: [16, 24])
    stage_blocks: List[int] = field(default_factory=lambda: [2, 2])
    stage_strides: List[int] = field(default_factory=lambda: [1, 2])
    kernels: List[int] = field(default_factory=lambda: [3, 5, 7])
    expansions: List[int] = field(default_factory=lambda: [3, 6])
    zero: bool = True
    dropout: float = 0.0


@dataclass
class DartsSpaceConfig:
    """DARTS cell space (``space=darts``); channels and classes come from the data."""
    _target_: str = "nas_hw.search.spaces.DartsSpace"
    channels: int = 8
    n_cells: int = 3
    n_nodes: int = 2
    reduction_cells: List[int] = field(default_factory=lambda: [1])
    ops: Optional[List[str]] = None


@dataclass
class DataConfig:
    """The dataset (``data=digits|cifar10``)."""
    _target_: str = "nas_hw.datasets.load_dataset"
    name: str = MISSING
    root: Optional[str] = None
    valid_fraction: float = 0.2
    test_fraction: Optional[float] = None
    seed: int = 0

    def __post_init__(self):
        _one_of("data.name", self.name, DATASETS)
        if self.name == "cifar10" and self.root is None:
            raise ValueError("data=cifar10 needs data.root=<folder of the CIFAR-10 python "
                             "batches> (nas_hw never downloads it)")
        if self.name == "digits" and self.root is not None:
            raise ValueError(f"data=digits is embedded in nas_hw and takes no data.root, got {self.root!r}")
        _finite("data.valid_fraction", self.valid_fraction)
        if not 0 <= self.valid_fraction < 1:
            raise ValueError(f"data.valid_fraction must be in [0, 1), got {self.valid_fraction!r}")
        if self.test_fraction is not None:
            _finite("data.test_fraction", self.test_fraction)
            if not 0 <= self.test_fraction < 1:
                raise ValueError(f"data.test_fraction must be in [0, 1), got {self.test_fraction!r}")
        _positive("data.seed", self.seed, allow_zero=True)


@dataclass
class DeviceConfig:
    """Where the search runs and latency is measured (``device=cpu|cuda|cudnn``)."""
    ext_name: str = "cpu"
    device_id: int = 0
    type_config: str = "float"

    def __post_init__(self):
        _one_of("device.ext_name", self.ext_name, EXT_NAMES)
        _positive("device.device_id", self.device_id, allow_zero=True)
        _one_of("device.type_config", self.type_config, TYPE_CONFIGS)


@dataclass
class CacheConfig:
    """The persistent latency cache, shared across runs; ``path=null`` means
    ``$NAS_HW_CACHE`` or the per-user cache file (never inside a run directory)."""
    path: Optional[str] = None


@dataclass
class Config:
    """The whole search configuration."""
    estimator: EstimatorConfig = MISSING
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    search: SearchConfig = MISSING
    retrain: RetrainConfig = field(default_factory=RetrainConfig)
    space: Any = MISSING
    data: DataConfig = MISSING
    device: DeviceConfig = MISSING
    cache: CacheConfig = field(default_factory=CacheConfig)
    callbacks: Dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    progress: bool = True


def register_configs():
    """Stores the schemas in Hydra's ConfigStore (idempotent)."""
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    cs.store(group="estimator", name="estimator_schema", node=EstimatorConfig)
    cs.store(group="latency", name="latency_schema", node=LatencyConfig)
    cs.store(group="search", name="search_schema", node=SearchConfig)
    cs.store(group="retrain", name="retrain_schema", node=RetrainConfig)
    cs.store(group="space", name="mobilenet_schema", node=MobileNetSpaceConfig)
    cs.store(group="space", name="darts_schema", node=DartsSpaceConfig)
    cs.store(group="data", name="data_schema", node=DataConfig)
    cs.store(group="device", name="device_schema", node=DeviceConfig)


def validate(cfg):
    """Checks every value of a composed config; raises ``ValueError`` naming the first bad one.

    Args:
        cfg: the composed ``DictConfig``.

    Returns:
        The config as plain objects (dataclasses, lists, dicts).

    Raises:
        ValueError: a value is out of range, or a key added with ``+group.key=...`` is not a
            field of that group's schema (it would otherwise be dropped silently).
    """
    _check_no_extra_keys(cfg, "")
    return OmegaConf.to_object(cfg)


def _check_no_extra_keys(node, path):
    """Structured nodes accept ``+key=value`` appends that ``to_object`` then drops: refuse them."""
    if not isinstance(node, DictConfig):
        return
    schema = OmegaConf.get_type(node)
    if dataclasses.is_dataclass(schema):
        allowed = [f.name for f in dataclasses.fields(schema)]
        extra = [k for k in node.keys() if k not in allowed]
        if extra:
            raise ValueError(f"{path}{extra[0]} is not a setting of {path.rstrip('.') or 'the config'} "
                             f"({schema.__name__}); allowed: {[k for k in allowed if not k.startswith('_')]}")
    for key in node.keys():
        if key == "hydra" and not path:
            continue
        _check_no_extra_keys(node._get_node(key), f"{path}{key}.")


register_configs()
