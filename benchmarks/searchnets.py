"""The real nnabla_nas 0.15 SearchNets as search spaces the benchmarks can sample and derive.

``import nas_hw`` first: it registers the placeholder of the subpackage the PyPI wheel lacks, so
``nnabla_nas.contrib.classification.{mobilenet,darts}`` import (nas_hw/nnabla_nas_compat.py).

:class:`RealSpace` wraps one SearchNet with the two things nas_hw's spaces offer the benchmarks
and the :class:`~nas_hw.estimators.calibrated.Calibrator`: ``candidate_names_per_group`` (one
choice group per MixedOp) and ``derive(choices)``. Deriving fixes every MixedOp on its chosen
candidate (mode ``sample``, the chosen candidate active through nnabla_nas's own
``active_index`` setter, so its ``need_grad`` and ``is_active`` follow, and a ``call`` that runs
only that candidate instead of sampling anew) and returns the SearchNet itself: one subnetwork
at a time, the one derived last.
"""
import nas_hw  # noqa: F401  (before nnabla_nas.contrib)
from nas_hw import nnabla_nas_compat as nnas

#: The real SearchNets, at CIFAR-like settings (10 classes): MobileNetV2 as nnabla_nas builds it,
#: DARTS with 16 channels and 8 cells (5 in the quick runs; 8 channels and 5 cells at 224x224).
SEARCHNETS = ("mobilenet", "darts")


def build_searchnet(name, resolution=32, small=False):
    """A real nnabla_nas SearchNet (inference mode); ``small``: DARTS of 5 cells (quick runs)."""
    from nnabla_nas.contrib.classification import darts, mobilenet

    if name == "mobilenet":
        net = mobilenet.SearchNet(num_classes=10, mode="sample")
        config = {"class": "nnabla_nas.contrib.classification.mobilenet.SearchNet", "num_classes": 10}
    elif name == "darts":
        channels, cells = (16, 5 if small else 8) if resolution < 128 else (8, 5)
        net = darts.SearchNet(in_channels=3, init_channels=channels, num_cells=cells, num_classes=10, mode="sample")
        config = {"class": "nnabla_nas.contrib.classification.darts.SearchNet", "init_channels": channels,
                  "num_cells": cells, "num_classes": 10}
    else:
        raise ValueError(f"space must be one of {SEARCHNETS}, got {name!r}")
    net.apply(training=False)
    return RealSpace(net, config)


class RealSpace:
    """A real SearchNet as a space: choice groups = its MixedOps (see the module docstring)."""

    def __init__(self, net, config):
        self.net = net
        self.config = dict(config)
        self.ops = [m for _, m in net.get_modules() if nnas.is_mixed_op(m)]
        self.candidate_names_per_group = [[type(c).__name__ for c in nnas.candidates(m)] for m in self.ops]
        self.derive([0] * len(self.ops))

    @property
    def n_choice_groups(self):
        return len(self.ops)

    def derive(self, choices):
        """The SearchNet fixed on ``choices`` (one candidate index per MixedOp)."""
        if len(choices) != len(self.ops):
            raise ValueError(f"{len(self.ops)} choices expected, got {len(choices)}")
        for m, c in zip(self.ops, choices):
            c = int(c)
            nnas.set_mode(m, "sample")
            m.active_index = c  # nnabla_nas's setter: need_grad / is_active of the candidates
            m.__dict__["call"] = lambda x, ops=nnas.candidates(m), c=c: ops[c](x)
        return self.net
