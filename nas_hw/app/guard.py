"""Nothing on disk for a run that never starts.

Hydra creates a run's directory, its ``.hydra/`` and its log before it calls the task, so a
config error found by the task left an empty run behind. :class:`CheckFirst`, a Hydra callback
named in ``conf/config.yaml`` (``hydra.callbacks.check_first``), runs the task's own start-up
checks (:func:`check_search`: every object built, every setting checked, nothing measured)
on the composed config before that: a single run in ``on_run_start``, every job of a multirun
on Hydra's basic sweeper in ``on_multirun_start`` (before the sweep directory exists). The
task checks again (the same code), which covers configs composed another way.
"""
from hydra.experimental.callback import Callback
from omegaconf import OmegaConf

from ..errors import NasHwError
from .config import validate
from .entry import TaskError, fail


class CheckFirst(Callback):
    """Hydra callback: runs ``check(cfg)`` on the composed config before Hydra creates anything
    on disk, so a config error leaves no run directory, no ``.hydra/`` and no log behind.

    A single run is checked in ``on_run_start``; a multirun on Hydra's basic sweeper checks
    every job of the sweep in ``on_multirun_start``, before the sweep directory exists (another
    sweeper's jobs are checked as each starts, by the task itself).

    Args:
        check: the dotted name of a function taking the composed config (without its ``hydra``
            node) and raising a :class:`~nas_hw.errors.NasHwError` for a config that cannot run;
            ``None`` checks nothing.
    """

    def __init__(self, check=None):
        self.check = check

    def on_run_start(self, config, **kwargs):
        """Checks the run's config."""
        self._check(config)

    def on_multirun_start(self, config, **kwargs):
        """Checks every job of the sweep (basic sweeper only)."""
        jobs = sweep_jobs(config) if self.check else None
        if jobs is None:
            return
        loader, overrides = jobs
        for job in overrides:
            self._check(loader.load_sweep_config(master_config=config, sweep_overrides=list(job)))

    def _check(self, config):
        if not self.check:
            return
        from hydra.utils import get_method  # Hydra's own loader of dotted names

        task_cfg = OmegaConf.masked_copy(config, [k for k in config.keys() if k != "hydra"])
        try:
            get_method(self.check)(task_cfg)
        except (NasHwError, FileNotFoundError) as err:
            raise TaskError(fail(err)) from None


def sweep_jobs(config):
    """``(config loader, [overrides of each job])`` of a multirun on Hydra's basic sweeper, as
    the sweeper will expand them; ``None`` for another sweeper."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if OmegaConf.select(config, "hydra.sweeper._target_") != f"{BasicSweeper.__module__}.BasicSweeper":
        return None
    loader = GlobalHydra.instance().config_loader()
    params = OmegaConf.select(config, "hydra.sweeper.params") or {}
    arguments = [f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task)
    overrides = OverridesParser.create(config_loader=loader).parse_overrides(arguments)
    return loader, [job for batch in BasicSweeper.split_arguments(overrides, None) for job in batch]


def check_search(cfg, output_dir="."):
    """Everything :func:`~nas_hw.app.pipeline.run_search` checks before measuring, on a composed
    config; nothing is measured or written (``output_dir`` is where the run would write).

    Raises:
        ConfigInputError, CacheError, FileNotFoundError, ...: what ``run_search`` would raise
            before its first measurement.
    """
    from .pipeline import plan_search

    plan = plan_search(validate(cfg), output_dir)
    plan.setup.cache.close()
