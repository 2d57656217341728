"""``nas-hw profile``: build the candidate table of a configured search space on this device.

A Hydra app over the search's config tree (``conf/profile.yaml`` extends ``conf/config.yaml``)::

    nas-hw profile space=darts table.input_shape=[1,1,8,8] estimator=module
    nas-hw profile out=table.json            # also write the table as JSON
    nas-hw profile -m space=mobilenet,darts  # one table per space

The space is built as the search builds it (the same :func:`nas_hw.app.pipeline.setup`: channels
and classes from ``data``, ``seed``, the ``device``'s context and type configuration); every
candidate of every choice point and the fixed rest of the network are measured through the
layer-based estimator of ``estimator`` (each distinct layer once: the latency cache of
``cache.path`` / ``cache.url`` serves the rest), at ``table.input_shape``. The table is stored in that cache
(``candidate_table/<space_key>``), so a search on the same device, space and shape measures
nothing, and ``nas-hw cache export`` carries it along. A second run takes 0 measurements.
Nothing is written to a run directory.
"""
import os
import sys
from dataclasses import dataclass

import hydra

from ..constants import TIME_UNITS
from ..errors import ConfigInputError, NasHwError
from .config import validate
from .entry import TaskError, fail, run_hydra_app
from .pipeline import TABLE_BLOB, build_table, calibrate_table, make_calibrator, setup


@dataclass
class ProfileResult:
    """What :func:`profile` did.

    Attributes:
        table: the :class:`~nas_hw.nas.table.CandidateTable`.
        measurements: layer measurements taken (0 on a warm cache).
        cache_hits: layers served from the cache.
        cache_path: the cache the table and measurements are stored in.
        input_shape: the shape the table is for.
        space: the space's class name.
        calibration: the calibration stored with ``table.calibrate=true``, else ``None``.
    """

    table: object
    measurements: int
    cache_hits: int
    cache_path: str
    input_shape: tuple
    space: str
    calibration: object = None

    def summary(self):
        """The summary lines printed by ``nas-hw profile``."""
        t = self.table
        u = TIME_UNITS[t.unit]
        n_candidates = sum(len(c) for c in t.costs["latency"])
        return "\n".join([
            f"candidate table of {self.space} at input {','.join(map(str, self.input_shape))} "
            f"(space_key {t.space_key}, fingerprint {t.fingerprint})",
            f"choice points: {len(t.names)} ({t.n_groups} choice groups)",
            f"candidates: {n_candidates}",
            f"measurements taken: {self.measurements} (cache hits: {self.cache_hits})",
            f"fixed latency (outside the choice points): {t.fixed['latency']:.4f} {u}",
            f"subnetwork latency: min {t.min():.4f} {u}, max {t.max():.4f} {u}",
            f"stored in cache {self.cache_path} as {TABLE_BLOB}/{t.space_key}",
        ] + ([] if self.calibration is None else [
            f"calibration: scale {self.calibration.scale:.4g}, per layer {self.calibration.per_layer:.4g} {u}, "
            f"const {self.calibration.const:.4g} {u} ({self.calibration.n_points} networks), stored as "
            f"calibration/{self.calibration.name}"]))


def profile(cfg, progress=None):
    """Builds the candidate table described by ``cfg`` and stores it in the cache.

    Args:
        cfg: the composed, validated config.
        progress: show the progress bar; ``None`` follows ``cfg.progress``.

    Returns:
        ProfileResult.
    """
    progress = bool(cfg.progress) if progress is None else bool(progress)
    if cfg.table.stored:
        raise ConfigInputError("table.stored=true reads what nas-hw profile stores: profile measures, "
                               "leave table.stored false here")
    s = setup(cfg)
    try:
        calibrator = make_calibrator(s, cfg)
        table = build_table(s, progress)
        calibration = None
        if calibrator is not None:
            _, calibration = calibrate_table(s, table, calibrator, cfg)
        return ProfileResult(table, s.cache.measurements, s.cache.hits, s.cache.path, s.deploy_shape,
                             getattr(s.model, "space_name", type(s.model).__name__), calibration)
    finally:
        s.cache.close()


@hydra.main(version_base="1.3", config_path="conf", config_name="profile")
def hydra_main(cfg):
    """The Hydra task: one table."""
    out = cfg.get("out")
    try:
        if out and not os.path.isdir(os.path.dirname(os.path.abspath(out))):
            raise ConfigInputError(f"out={out!r}: directory {os.path.dirname(os.path.abspath(out))!r} "
                                   "does not exist")
        result = profile(validate(cfg))
        if out:
            result.table.save(out)
    except (NasHwError, OSError) as err:
        raise TaskError(fail(err)) from None
    sys.stdout.write(result.summary() + "\n")
    if out:
        sys.stdout.write(f"wrote {out}\n")


def main(argv=None):
    """``nas-hw profile [OVERRIDE ...]``; returns the exit code. ``--out FILE`` (the earlier
    spelling) is taken as ``out=FILE``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--out" in argv:
        i = argv.index("--out")
        if i + 1 >= len(argv):
            return fail(NasHwError("--out needs a file name (or write out=FILE)"), 2)
        argv[i:i + 2] = [f"out={argv[i + 1]}"]
    return run_hydra_app(hydra_main, argv, "nas-hw profile")
