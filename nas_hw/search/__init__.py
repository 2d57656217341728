"""nas_hw's own DARTS / ProxylessNAS search loop, its data, spaces, derivation and retraining.

:class:`~nas_hw.search.loop.Searcher` runs the search; :class:`~nas_hw.search.darts.DartsSearcher`
and :class:`~nas_hw.search.proxyless.ProxylessSearcher` are its two algorithms.
"""
from .darts import DartsSearcher
from .loop import Searcher
from .proxyless import ProxylessSearcher

SEARCHERS = {"darts": DartsSearcher, "proxyless": ProxylessSearcher}

__all__ = ["Searcher", "DartsSearcher", "ProxylessSearcher", "SEARCHERS"]
