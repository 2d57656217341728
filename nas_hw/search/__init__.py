"""A small DARTS / ProxylessNAS search loop with hardware-aware callbacks and penalties.

:class:`Searcher` (:class:`DartsSearcher`, :class:`ProxylessSearcher`) runs the search;
:func:`run_search` is the whole pipeline behind ``examples/search.py`` (table, search,
derivation, retraining, report).
"""
from .searcher import (ALGORITHMS, DartsSearcher, ProxylessSearcher, Searcher, make_searcher,
                       measure_network_latency_ms)

__all__ = ["ALGORITHMS", "Searcher", "DartsSearcher", "ProxylessSearcher", "make_searcher",
           "measure_network_latency_ms", "run_search", "train_from_scratch"]


def __getattr__(name):
    # the pipeline pulls in Hydra and the estimators: load it only when asked for
    if name == "run_search":
        from .pipeline import run_search
        return run_search
    if name == "train_from_scratch":
        from .retrain import train_from_scratch
        return train_from_scratch
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
