"""A small bounded memo of whole estimates, for repeated queries of one architecture.

Keys are plain values (a tuple of MixedOp choices, input shapes and modes), never a graph, a
Variable or a model: the module estimator keeps one memo per model, in a weakly keyed map, so
nothing here outlives the model. Estimates only depend on cached, immutable measurements, so an
entry stays true until the estimator's ``reset()`` clears it.
"""
from collections import OrderedDict


class EstimateMemo:
    """LRU map ``key -> (total, breakdown)`` with at most ``size`` entries."""

    def __init__(self, size=64):
        self.size = size
        self._entries = OrderedDict()
        self.hits = 0

    def get(self, key):
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            self.hits += 1
        return entry

    def put(self, key, total, breakdown):
        self._entries[key] = (total, tuple(breakdown))
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self):
        self._entries.clear()

    def __len__(self):
        return len(self._entries)
