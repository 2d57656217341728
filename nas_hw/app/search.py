"""``nas-hw search``: the hardware-aware search as a Hydra app (config tree: ``conf/``).

    nas-hw search                                            # DARTS, graph estimator, CPU, digits
    nas-hw search estimator=module search=proxyless latency.weight=0.3
    nas-hw search latency=none                               # accuracy only
    nas-hw search table.input_shape=[1,1,64,64]              # deployment shape
    nas-hw search ~callbacks.csv callbacks.monitor.n_run=50
    nas-hw search -m latency.weight=0.1,0.3,1 seed=0,1,2
    nas-hw search search.resume=outputs/search/<run>         # carry on a stopped run
    nas-hw search --cfg job                                  # print the composed config

Every run writes report.json, arch.json, search_log.csv, search.log and checkpoint/ into its
Hydra output directory; the latency cache is shared by all runs (cache.path, or cache.url for a
PostgreSQL server store; default $NAS_HW_CACHE or the user cache).
"""
import logging
import os
import sys

import hydra
from hydra.core.hydra_config import HydraConfig

from ..errors import NasHwError
from .config import validate
from .entry import TaskError, fail, run_hydra_app
from .pipeline import REPORT_FILE, run_search

logger = logging.getLogger("nas_hw.search")


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def hydra_main(cfg):
    """The Hydra task: one search. Returns the value a sweeper would optimise."""
    try:
        cfg = validate(cfg)
        output_dir = HydraConfig.get().runtime.output_dir
        report = run_search(cfg, output_dir)
    except (NasHwError, FileNotFoundError) as err:
        raise TaskError(fail(err)) from None
    logger.info("report: %s", os.path.join(output_dir, REPORT_FILE))
    return report["test_acc"] if report["test_acc"] is not None else report["search_valid_acc"]


def main(argv=None):
    """``nas-hw search [OVERRIDE ...]``; returns the exit code."""
    return run_hydra_app(hydra_main, sys.argv[1:] if argv is None else argv, "nas-hw search")
