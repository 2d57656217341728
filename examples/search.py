"""Hardware-aware architecture search on digits (or CIFAR-10), configured with Hydra.

    python examples/search.py                                   # DARTS, graph estimator, CPU
    python examples/search.py estimator=module search=proxyless latency.weight=0.1
    python examples/search.py latency.input_shape=[1,1,64,64]   # deployment shape
    python examples/search.py ~callbacks.csv callbacks.monitor.n_run=50
    python examples/search.py -m latency.weight=0,0.1,1 seed=0,1,2
    python examples/search.py search.resume=outputs/search/<run>   # carry on a stopped run

The config tree is conf/ (schemas in nas_hw/config.py). Every run writes report.json,
arch.json, search_log.csv, search.log and checkpoint/ into its Hydra output directory; the
latency cache is shared by all runs (cache.path, default $NAS_HW_CACHE or the user cache).
"""
import logging
import os

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException

from nas_hw.config import validate
from nas_hw.errors import NasHwError
from nas_hw.search.pipeline import run_search

CONF_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "conf")
logger = logging.getLogger("nas_hw.search")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(cfg):
    try:
        validate(cfg)
    except ValueError as err:
        raise SystemExit(f"config error: {err}") from None
    output_dir = HydraConfig.get().runtime.output_dir
    try:
        report = run_search(cfg, output_dir)
    except (NasHwError, FileNotFoundError, InstantiationException) as err:
        # bad input found at run time (cache file, data root, a callback's settings): one line,
        # not a traceback; anything else is a bug and keeps its traceback
        message = " ".join(str(err).split())
        raise SystemExit(f"error: {type(err).__name__}: {message}") from None
    logger.info("report: %s", os.path.join(output_dir, "report.json"))
    # the value a sweeper would optimise
    return report["test_acc"] if report["test_acc"] is not None else report["search_valid_acc"]


if __name__ == "__main__":
    main()
