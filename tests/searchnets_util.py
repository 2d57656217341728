"""The real SearchNets of the nnabla-nas 0.15.0 wheel, at their smallest settings, for the tests.

Every space of the wheel that has MixedOps is here: DARTS (also PNAS's, searched by sampling and
derived by the argmax), MobileNetV2 / ProxylessNAS, FairNAS. zoph (static ``Join``),
random_wired (no choice) and OFA (not in the wheel) have none.
"""
import functools
import itertools

import nas_hw  # noqa: F401  (the wheel's SearchNets import after it)
from nnabla_nas.contrib.classification import darts, fairnas, mobilenet

from nas_hw.measure.timing import TimingStats
from nas_hw.search.spaces.searchnets import SearchNetSpace

MOBILE = dict(width_mult=0.25, settings=[[8, 1, 1], [16, 2, 2]], candidates=["MB3 3x3", "MB6 5x5"])

#: name -> (SearchNet factory, SearchNetSpace settings, deployment input shape)
SEARCHNETS = {
    "darts": (functools.partial(darts.SearchNet, init_channels=4, num_cells=1, num_choices=2, multiplier=2,
                                stem_multiplier=1, shared=True),
              dict(rule="darts", image_size=16), (1, 1, 16, 16)),
    "pnas": (functools.partial(darts.SearchNet, init_channels=4, num_cells=1, num_choices=2, multiplier=2,
                               stem_multiplier=1, shared=True),
             dict(rule="argmax", image_size=16), (1, 1, 16, 16)),
    "darts_unshared": (functools.partial(darts.SearchNet, init_channels=2, num_cells=2, num_choices=2,
                                         multiplier=2, stem_multiplier=1, shared=False),
                       dict(rule="darts", image_size=32), (1, 1, 32, 32)),
    "mobilenet": (functools.partial(mobilenet.SearchNet, **MOBILE), dict(rule="argmax", image_channels=3),
                  (1, 3, 8, 8)),
    "fairnas": (functools.partial(fairnas.SearchNet, **MOBILE), dict(rule="argmax", image_channels=3),
                (1, 3, 8, 8)),
}


def space(name, mode="full", seed=0):
    """``(SearchNetSpace, deployment input shape)`` of one of :data:`SEARCHNETS`."""
    factory, settings, shape = SEARCHNETS[name]
    return SearchNetSpace(factory, in_channels=1, n_classes=10, mode=mode, seed=seed, **settings), shape


class FakeTimer:
    """A measuring seam for tests where timing is not what is tested: runs ``fn`` once (so a
    layer that cannot run still fails) and returns a made-up, positive, layer-dependent time."""

    def __init__(self):
        self._times = itertools.cycle([2e-6, 5e-6, 3e-6, 7e-6, 11e-6])
        self.calls = 0

    def __call__(self, fn, **settings):
        fn()
        self.calls += 1
        t = next(self._times)
        return TimingStats(t, t, 0.0, t, 1, 1)
