"""Schemas of the configs of ``nas-hw search`` and ``nas-hw profile``.

The YAML files under ``conf/`` are the configs; each dataclass here is the schema of one config
group's node: it fixes the node's keys and their types. :func:`validate` merges the composed
config into the schemas (the node's ``_target_`` picks its schema), so a misspelt key
(``latency.wieght=0.1``, which Hydra already refuses), an appended one (``+latency.x=1``) or a
wrong type (``latency.weight=abc``) fails in one line naming the key, before anything runs.
Values are checked by the objects the config describes (``_target_``), once, in their
constructors; :func:`nas_hw.app.pipeline.build` names the config group in that one line too.
The schemas are not stored in Hydra's ConfigStore, so ``--help`` lists only the YAML options.
"""
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Optional

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from omegaconf.nodes import BooleanNode

from ..checks import check_time_scale
from ..constants import time_factor
from ..errors import ConfigInputError

#: Keys of earlier versions and where they went: an override naming one fails with this hint.
RENAMED = {
    "latency.input_shape": "table.input_shape",
    "latency.calibrate": "table.calibrate",
    "latency.calibration_points": "table.calibration_points",
    "search.algorithm": "the search group: search=darts or search=proxyless",
}


@dataclass
class EstimatorConfig:
    """Layer-based latency estimator that fills the candidate table (``estimator=graph|module``).
    The device, the cache and the batch size come from ``device``, ``cache`` and ``table`` at
    run time (``_partial_``)."""
    _target_: str = MISSING
    _partial_: bool = True
    n_run: int = 20
    n_warmup: int = 3
    max_measure_execution_time: float = 1.0
    time_scale: str = "m"
    outlier: float = 0.0
    wait_for_quiet: float = 0.0


@dataclass
class LatencyConfig:
    """The latency penalty (:class:`~nas_hw.nas.penalty.LatencyPenalty`); ``latency=none`` for an
    accuracy-only search. ``target`` is in ``unit`` (a time scale: 'm' ms, 'u' us, 'n' ns)."""
    _target_: str = "nas_hw.nas.penalty.LatencyPenalty"
    weight: float = 0.1
    target: Optional[float] = None
    mode: str = "linear"
    a: float = 0.2
    b: float = 0.3
    unit: str = "m"


@dataclass
class TableConfig:
    """The candidate table: the deployment input shape (N, C, H, W) of every latency
    (``None``: batch 1 at the data's image shape) and its calibration on at most
    ``calibration_points`` whole-network measurements. ``stored``: read the table (and the
    calibration) that ``nas-hw profile`` stored and measure nothing in this job."""
    input_shape: Optional[List[int]] = None
    calibrate: bool = False
    calibration_points: int = 5
    stored: bool = False
    fingerprint: Optional[str] = None


@dataclass
class SearchConfig:
    """nas_hw's DARTS search loop (``search=darts``); the model, data, penalty and callbacks
    are given at run time (``_partial_``). ``resume``: a run directory to carry on."""
    _target_: str = "nas_hw.search.darts.DartsSearcher"
    _partial_: bool = True
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
    checkpoint: bool = True
    resume: Optional[str] = None


@dataclass
class ProxylessSearchConfig(SearchConfig):
    """nas_hw's ProxylessNAS search loop (``search=proxyless``)."""
    _target_: str = "nas_hw.search.proxyless.ProxylessSearcher"
    n_samples: int = 4
    baseline_decay: float = 0.9


@dataclass
class RandomSearchConfig:
    """The random-search baseline (``search=random``): the ``draw``-th architecture drawn
    uniformly for the run's seed (:class:`~nas_hw.search.baselines.RandomArchitecture`)."""
    _target_: str = "nas_hw.search.baselines.RandomArchitecture"
    _partial_: bool = True
    draw: int = 0


@dataclass
class UniformSearchConfig:
    """The uniform-family baseline (``search=uniform``): every choice group takes ``candidate``, a
    name (str) or an index (int) (:class:`~nas_hw.search.baselines.UniformArchitecture`)."""
    _target_: str = "nas_hw.search.baselines.UniformArchitecture"
    _partial_: bool = True
    candidate: Any = MISSING


@dataclass
class RetrainConfig:
    """Training the derived architecture from scratch (``retrain.epochs=0`` or ``retrain=none``
    skips it)."""
    _target_: str = "nas_hw.search.retrain.Retrainer"
    epochs: int = 20
    batch_size: int = 64
    max_batches: Optional[int] = None
    optimizer: str = "momentum"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 1e-4


@dataclass
class MobileNetSpaceConfig:
    """nas_hw's MobileNetV2-style space (``space=mobilenet``); channels, classes and the seed
    come from the data and the run."""
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
    """nas_hw's DARTS cell space (``space=darts``); channels, classes and the seed come from the
    data and the run."""
    _target_: str = "nas_hw.search.spaces.DartsSpace"
    channels: int = 8
    n_cells: int = 3
    n_nodes: int = 2
    reduction_cells: List[int] = field(default_factory=lambda: [1])
    ops: List[str] = field(default_factory=lambda: ["skip", "zero", "sep_conv_3x3", "sep_conv_5x5",
                                                    "dil_conv_3x3", "max_pool_3x3", "avg_pool_3x3"])


@dataclass
class SearchNetSpaceConfig:
    """A real nnabla_nas SearchNet (``space=nnabla_nas/darts|pnas|mobilenet|fairnas``): ``net`` is
    the SearchNet's own ``_partial_`` node (its class and settings); channels, classes and the
    seed come from the data and the run (see :mod:`nas_hw.search.spaces.searchnets`)."""
    _target_: str = "nas_hw.search.spaces.searchnets.SearchNetSpace"
    rule: str = "argmax"
    image_channels: Optional[int] = None
    image_size: Optional[int] = None
    net: Any = MISSING


@dataclass
class DataConfig:
    """The dataset (``data=digits|cifar10``; ``distorted_digits`` has its own schema)."""
    _target_: str = "nas_hw.search.datasets.load_dataset"
    name: str = MISSING
    root: Optional[str] = None
    valid_fraction: float = 0.2
    test_fraction: Optional[float] = None
    seed: int = 0


@dataclass
class DistortedDigitsConfig:
    """The harder embedded task (``data=distorted_digits``): the digits upscaled, rotated,
    shifted and noised on a ``size`` x ``size`` canvas (:mod:`nas_hw.search.distorted`)."""
    _target_: str = "nas_hw.search.distorted.load_distorted_digits"
    name: str = "distorted_digits"
    size: int = 12
    copies: int = 1
    eval_copies: int = 3
    scale: List[float] = field(default_factory=lambda: [1.1, 1.4])
    max_rotation_deg: float = 30.0
    max_shift: float = 1.5
    noise_std: float = 0.2
    valid_fraction: float = 0.2
    test_fraction: float = 0.2
    seed: int = 0


@dataclass
class DeviceConfig:
    """Where the search runs and latency is measured (``device=cpu|cuda|cudnn``)."""
    _target_: str = "nas_hw.measure.device.Device"
    ext_name: str = "cpu"
    device_id: int = 0
    type_config: str = "float"


@dataclass
class BackendConfig:
    """Where layers and networks are timed (``backend=nnabla|onnxruntime``): nnabla's kernels on
    the ``device``, or ONNX Runtime with an execution ``provider``, ``threads`` (intra-op) and a
    graph ``optimization`` level (ignored by ``nnabla``)."""
    name: str = "nnabla"
    provider: str = "cpu"
    threads: int = 1
    optimization: str = "all"


@dataclass
class CacheConfig:
    """The persistent latency store, shared across runs: ``path`` a file, or ``url`` a
    ``postgresql://`` server store (without a password: ``PGPASSWORD``, ``~/.pgpass`` or
    ``PGSERVICE`` give it); both ``null`` mean ``$NAS_HW_CACHE`` (a file or a URL) or the
    per-user cache file (never inside a run directory). See :func:`cache_location`."""
    path: Optional[str] = None
    url: Optional[str] = None


#: Why a password never goes into a config (one line, shown where one is found).
PASSWORD_IN_CONFIG = ("must not carry a password: Hydra records every run's config and overrides "
                      "(.hydra/config.yaml, overrides.yaml); give it through PGPASSWORD, ~/.pgpass or "
                      "PGSERVICE (docs/scaling.md)")


def cache_location(cache_cfg):
    """The store the ``cache`` node names: its ``url``, its ``path``, or ``None`` (the default).

    Raises:
        ConfigInputError: both are given, ``url`` is not a ``postgresql://`` URL or carries a
            password, or ``path`` is a URL.
    """
    from ..measure.store import is_server_url, redact
    from ..measure.store.location import url_passwords

    path, url = cache_cfg.get("path"), cache_cfg.get("url")
    if path is not None and url is not None:
        raise ConfigInputError(f"cache.path={path!r} and cache.url={redact(str(url))!r}: give one "
                               "(a file path, or a postgresql:// server URL)")
    if path is not None and is_server_url(path):
        raise ConfigInputError(f"cache.path={redact(path)!r} is a server URL: give it as cache.url "
                               "(cache.path is a file path)")
    if url is not None:
        if not is_server_url(url):
            raise ConfigInputError(f"cache.url must be a postgresql:// URL, got {url!r} "
                                   "(a file goes in cache.path)")
        if url_passwords(url):
            raise ConfigInputError(f"cache.url={redact(url)!r} {PASSWORD_IN_CONFIG}")
        return url
    return path


def secret_in_override(override):
    """The one-line refusal of a command-line override that would record a password in the run's
    config (``cache.url=postgresql://user:secret@...``), or ``None``."""
    from ..measure.store import is_server_url, redact
    from ..measure.store.location import url_passwords

    key, sep, value = override.lstrip("+~").partition("=")
    value = value.strip("'\"")
    if sep and key in ("cache.url", "cache.path") and is_server_url(value) and url_passwords(value):
        return f"{key}={redact(value)!r} {PASSWORD_IN_CONFIG}"
    return None


class ReferenceMode(Enum):
    """When the accuracy-only reference is run (see :mod:`nas_hw.app.reference`)."""
    auto = "auto"
    cached = "cached"
    off = "off"


@dataclass
class ReferenceConfig:
    """The accuracy-only reference shown beside the result (:mod:`nas_hw.app.reference`):
    ``auto`` runs it once when none is stored, ``cached`` only reuses a stored one, ``off``.
    An Enum, so a wrong mode is refused by :func:`validate`, before anything runs."""
    mode: ReferenceMode = ReferenceMode.cached


@dataclass
class Config:
    """The whole configuration of ``nas-hw search`` and ``nas-hw profile``."""
    estimator: EstimatorConfig = MISSING
    latency: Optional[LatencyConfig] = None
    table: TableConfig = field(default_factory=TableConfig)
    search: Any = MISSING  # SearchConfig, ProxylessSearchConfig or a baseline's
    retrain: Optional[RetrainConfig] = None
    space: Any = MISSING
    data: Any = MISSING  # DataConfig or DistortedDigitsConfig
    device: DeviceConfig = MISSING
    backend: BackendConfig = field(default_factory=BackendConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    callbacks: Dict[str, Any] = field(default_factory=dict)
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)
    seed: int = 0
    progress: bool = True
    out: Optional[str] = None  # nas-hw profile: also write the table as JSON to this file


#: The schema of a group's node, by the node's ``_target_`` (a node of another target, such
#: as a user's own space, is taken as it is).
SCHEMAS = {cls._target_: cls for cls in (
    LatencyConfig, SearchConfig, ProxylessSearchConfig, RandomSearchConfig, UniformSearchConfig,
    RetrainConfig, MobileNetSpaceConfig, DartsSpaceConfig, SearchNetSpaceConfig, DataConfig,
    DistortedDigitsConfig, DeviceConfig)}
#: Groups whose schema does not depend on the ``_target_``.
FIXED_SCHEMAS = {"estimator": EstimatorConfig, "table": TableConfig, "cache": CacheConfig,
                 "reference": ReferenceConfig, "backend": BackendConfig}


def validate(cfg):
    """The composed config merged into its schemas: types converted and checked, unknown keys
    refused. Returns a new ``DictConfig``.

    Raises:
        ConfigInputError: one line naming the key (and its schema) that is wrong.
    """
    try:
        schema = OmegaConf.structured(Config)
        for key in list(cfg.keys()):
            if key == "hydra":
                continue
            node = cfg[key]
            target = node.get("_target_") if isinstance(node, DictConfig) else None
            node_schema = FIXED_SCHEMAS.get(key) or SCHEMAS.get(target)
            if node_schema is not None:
                OmegaConf.update(schema, key, OmegaConf.structured(node_schema), merge=False)
        plain = OmegaConf.masked_copy(cfg, [k for k in cfg.keys() if k != "hydra"])
        _check_flags(schema, plain, "")
        return OmegaConf.merge(schema, plain)
    except OmegaConfBaseException as err:
        raise ConfigInputError(config_error_line(err)) from None


def _check_flags(schema, node, prefix):
    """A flag (a ``bool`` field) takes ``true`` or ``false`` only: OmegaConf would turn
    ``space.zero=2`` into ``True``."""
    for key in node.keys() if isinstance(node, DictConfig) and isinstance(schema, DictConfig) else ():
        if key not in schema or OmegaConf.is_interpolation(node, key):
            continue
        field, value = schema._get_node(key), node._get_node(key)
        if isinstance(field, DictConfig):
            _check_flags(field, value, f"{prefix}{key}.")
        elif isinstance(field, BooleanNode) and not isinstance(value, DictConfig) \
                and not isinstance(value._value(), (bool, type(None))):
            raise ConfigInputError(f"{prefix}{key} must be true or false, got {value._value()!r}")


def config_error_line(err):
    """One line naming the key an OmegaConf error is about."""
    key = getattr(err, "full_key", None)
    text = " ".join(str(err).split("\n")[0].split())
    return f"{key}: {text}" if key else text


def renamed_key(override):
    """The hint for an override naming a key of an earlier version, or ``None``."""
    key = override.lstrip("+~").split("=", 1)[0]
    return RENAMED.get(key)


def _to_ms(value, unit):
    """The ``nas_hw.ms`` resolver: ``value`` in time scale ``unit`` as milliseconds (``None``
    stays ``None``)."""
    if value is None:
        return None
    return float(value) * time_factor(check_time_scale(unit, "latency.unit"), "m")


OmegaConf.register_new_resolver("nas_hw.ms", _to_ms, replace=True)
