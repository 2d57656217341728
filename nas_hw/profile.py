"""``nas-hw profile``: build the candidate table of a configured search space on this device.

The configuration is the search's Hydra tree (``conf/``, schemas in :mod:`nas_hw.config`),
composed with the command line's overrides, e.g.::

    nas-hw profile space=darts latency.input_shape=[1,1,8,8] estimator=module

The space is built as the search builds it (channels and classes from ``data``, ``seed``),
every candidate of every choice point and the fixed rest of the network are measured
through the layer-based estimator of ``estimator`` on ``device`` (each distinct layer once:
the persistent latency cache of ``cache.path`` serves the rest), at ``latency.input_shape``
(default: batch 1 at the data's image shape). The table is stored in that cache
(``put_blob(fingerprint, 'candidate_table', space_key)``), so a search on the same device,
space and shape finds every layer measured, and ``nas-hw cache export`` carries it along;
``--out table.json`` also writes it as JSON (:meth:`nas_hw.table.CandidateTable.load`).

A second run on a warm cache takes 0 measurements.

Exit codes of :func:`run`: 0 success, 2 a bad configuration or override, 1 a failure while
measuring or storing (a layer that cannot run, an unusable cache).
"""
import argparse
import logging
import os
import sys
from dataclasses import dataclass

import nnabla as nn

from .errors import NasHwError

logger = logging.getLogger(__name__)

BLOB_KIND = "candidate_table"
CONFIG_NAME = "config"
UNIT_NAMES = {"m": "ms", "u": "us", "n": "ns"}


class ConfigInputError(NasHwError, ValueError):
    """The configuration (its directory, an override or a value) is unusable."""


def default_config_dir():
    """The ``conf/`` tree: ``$NAS_HW_CONF``, else the repository's ``conf/`` next to the
    package, else ``nas_hw/conf`` (an installed copy).

    Raises:
        ConfigInputError: none of them exists.
    """
    env = os.environ.get("NAS_HW_CONF")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [os.path.join(os.path.dirname(here), "conf"), os.path.join(here, "conf")]
    for path in candidates:
        if os.path.isfile(os.path.join(path, f"{CONFIG_NAME}.yaml")):
            return path
    raise ConfigInputError(f"cannot find the config tree (looked in {candidates}); pass "
                           "--config-dir or set NAS_HW_CONF")


def compose_config(overrides=(), config_dir=None, config_name=CONFIG_NAME):
    """Composes and validates the Hydra config with ``overrides`` (Hydra's compose API).

    Returns:
        The composed ``DictConfig``.

    Raises:
        ConfigInputError: a missing config directory, a bad override or a bad value.
    """
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from .config import validate

    config_dir = os.path.abspath(config_dir or default_config_dir())
    if not os.path.isdir(config_dir):
        raise ConfigInputError(f"config directory {config_dir!r} does not exist")
    try:
        with initialize_config_dir(config_dir=config_dir, version_base="1.3",
                                   job_name="nas_hw_profile"):
            cfg = compose(config_name=config_name, overrides=list(overrides))
        validate(cfg)
    except (HydraException, OmegaConfBaseException, ValueError) as err:
        raise ConfigInputError(f"bad configuration: {_one_line(err)}") from err
    return cfg


def _one_line(err):
    text = " ".join(str(err).split())
    return text or type(err).__name__


def deploy_shape(cfg, dataset):
    """``latency.input_shape`` (checked against the data's channels) or batch 1 at the data's
    image shape."""
    image_shape = tuple(int(s) for s in dataset.input_shape)
    if cfg.latency.input_shape is None:
        return (1,) + image_shape
    shape = tuple(int(s) for s in cfg.latency.input_shape)
    if shape[1] != image_shape[0]:
        raise ConfigInputError(f"latency.input_shape {list(shape)} has {shape[1]} channels, the "
                               f"data ({cfg.data.name}) has {image_shape[0]}")
    return shape


def build_model(cfg, dataset):
    """The search-space model of ``cfg.space`` (all candidates: MixedOps in mode ``full``),
    with channels and classes from ``dataset`` and the config's seed, in inference mode.

    Keys of ``cfg.space`` set to ``null`` are left to the space's constructor default
    (``ops: null`` is DartsSpace's default op list).
    """
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    space = {k: v for k, v in OmegaConf.to_container(cfg.space, resolve=True).items() if v is not None}
    model = instantiate(space, mode="full", in_channels=int(dataset.input_shape[0]),
                        n_classes=int(dataset.n_classes), seed=int(cfg.seed), _convert_="all")
    model.apply(training=False)
    return model


@dataclass
class ProfileResult:
    """What :func:`profile` did.

    Attributes:
        table: the :class:`~nas_hw.table.CandidateTable`.
        measurements: layer measurements taken (0 on a warm cache).
        cache_hits: layers served from the cache.
        cache_path: the cache the table and measurements are stored in.
        input_shape: the shape the table is for.
        space: the space's class name.
    """

    table: object
    measurements: int
    cache_hits: int
    cache_path: str
    input_shape: tuple
    space: str

    def summary(self):
        """The summary lines printed by ``nas-hw profile``."""
        t = self.table
        u = UNIT_NAMES.get(t.unit, t.unit)
        n_candidates = sum(len(c) for c in t.costs["latency"])
        return "\n".join([
            f"candidate table of {self.space} at input {','.join(map(str, self.input_shape))} "
            f"(space_key {t.space_key}, fingerprint {t.fingerprint})",
            f"choice points: {len(t.names)} ({t.n_groups} choice groups)",
            f"candidates: {n_candidates}",
            f"measurements taken: {self.measurements} (cache hits: {self.cache_hits})",
            f"fixed latency (outside the choice points): {t.fixed['latency']:.4f} {u}",
            f"subnetwork latency: min {t.min():.4f} {u}, max {t.max():.4f} {u}",
            f"stored in cache {self.cache_path} as {BLOB_KIND}/{t.space_key}",
        ])


def profile(cfg, progress=None):
    """Builds the candidate table described by ``cfg`` and stores it in the cache.

    Args:
        cfg: the composed config (see :func:`compose_config`).
        progress: show the progress bar; ``None`` follows ``cfg.progress``.

    Returns:
        ProfileResult.

    Raises:
        ConfigInputError: the data, space or estimator cannot be built from ``cfg``.
        MeasurementError, CacheError: measuring or storing failed.
    """
    from hydra.errors import HydraException
    from hydra.utils import instantiate

    from .cache import LatencyCache
    from .device import get_context
    from .table import CandidateTable

    progress = bool(cfg.progress) if progress is None else bool(progress)
    device = cfg.device
    ctx = get_context(device.ext_name, device.device_id, device.type_config)
    try:
        dataset = instantiate(cfg.data)
        shape = deploy_shape(cfg, dataset)
        with nn.context_scope(ctx):
            model = build_model(cfg, dataset)
        make_estimator = instantiate(cfg.estimator)
    except HydraException as err:
        raise ConfigInputError(f"bad configuration: {_one_line(err)}") from err
    cache = LatencyCache(cfg.cache.path)
    try:
        estimator = make_estimator(device_id=device.device_id, ext_name=device.ext_name,
                                   type_config=device.type_config, cache=cache, batch_size=shape[0])
        with nn.context_scope(ctx):
            table = CandidateTable.build(model, estimator, input_shape=shape, progress=progress)
        payload = table.to_dict()
        payload["estimator"] = dict(estimator.settings, batch_size=estimator.batch_size)
        cache.put_blob(table.fingerprint, BLOB_KIND, table.space_key, payload)
        logger.debug("candidate table %s stored in %s (%d measurements)", table.space_key,
                    cache.path, cache.measurements)
        return ProfileResult(table, cache.measurements, cache.hits, cache.path, shape,
                             type(model).__name__)
    finally:
        cache.close()


def add_arguments(parser):
    """Fills an argparse (sub)parser with the ``profile`` command's arguments."""
    parser.add_argument("overrides", nargs="*", metavar="OVERRIDE",
                        help="Hydra overrides of the search config, e.g. space=darts "
                             "latency.input_shape=[1,1,8,8] estimator=module device=cpu "
                             "cache.path=/tmp/latency.sqlite progress=false")
    parser.add_argument("--config-dir", default=None, metavar="DIR",
                        help="the Hydra config tree (default: $NAS_HW_CONF or the repository's conf/)")
    parser.add_argument("--config-name", default=CONFIG_NAME, help="top config file (default config)")
    parser.add_argument("--out", default=None, metavar="TABLE_JSON",
                        help="also write the table as JSON to this file")
    return parser


def _error(message, code):
    sys.stderr.write(f"nas-hw: error: {message}\n")
    return code


def run(args):
    """Runs ``nas-hw profile`` with parsed ``args``; returns the exit code."""
    try:
        if args.out is not None:
            out_dir = os.path.dirname(os.path.abspath(args.out))
            if not os.path.isdir(out_dir):
                raise ConfigInputError(f"--out {args.out!r}: directory {out_dir!r} does not exist")
        cfg = compose_config(args.overrides, args.config_dir, args.config_name)
        result = profile(cfg)
        if args.out is not None:
            result.table.save(args.out)
    except ConfigInputError as err:
        return _error(str(err), 2)
    except (ValueError, TypeError) as err:  # a value the estimator or the space refused
        return _error(_one_line(err), 2)
    except (NasHwError, OSError) as err:
        return _error(_one_line(err), 1)
    sys.stdout.write(result.summary() + "\n")
    if args.out is not None:
        sys.stdout.write(f"wrote {args.out}\n")
    return 0


def main(argv=None):
    """``python -m nas_hw.profile [overrides...]``."""
    parser = argparse.ArgumentParser(prog="nas-hw profile", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
