"""nas_hw's own search spaces, built only from ``nnabla_nas.module`` blocks.

Two spaces are provided (and :class:`SearchNetSpace` wraps nnabla_nas's own SearchNets:
:mod:`nas_hw.search.spaces.searchnets`):

* :class:`MobileNetSpace`: a ProxylessNAS / MobileNetV2-style chain of inverted
  residual blocks; every block is one choice point (kernel size x expansion ratio,
  plus "zero" = skip the block where a residual connection exists).
* :class:`DartsSpace`: a DARTS-style cell space; every edge of a cell is a choice
  point and, as in DARTS, all normal cells share one architecture parameter per
  edge and all reduction cells share another set.

A *choice group* is one distinct architecture parameter (``alpha``): one per block
for MobileNetSpace, one per edge of the normal cell and one per edge of the
reduction cell for DartsSpace. Groups are numbered in the order their ``alpha``
first appears in ``get_modules()``. Passing ``choices`` (one candidate index per
group) to a constructor, or calling :meth:`derive` on a search network, builds the
*derived* fixed network: the chosen candidates only, with no ``MixedOp`` and no
``alpha``.

Glue arithmetic (residual additions, the sums that form DARTS nodes, the
concatenation of a cell's nodes) is written as plain nnabla functions in the
network's own ``call``, never wrapped in a module, so that layer-based estimators
that walk the modules see only real layers. Container modules that are never
called (``ModuleList``, the per-cell ``Module``) record no input shapes.
"""
from ...checks import check_one_of
from .darts import DARTS_OPS, DartsSpace
from .mobilenet import MobileNetSpace
from .searchnets import SearchNetSpace

SPACE_NAMES = ('mobilenet', 'darts')
SPACES = {'mobilenet': MobileNetSpace, 'darts': DartsSpace}


def build_space(name, **kwargs):
    """Build a search space by name.

    Args:
        name: ``'mobilenet'`` or ``'darts'``.
        **kwargs: constructor arguments of :class:`MobileNetSpace` or :class:`DartsSpace`.

    Returns:
        MobileNetSpace or DartsSpace.

    Raises:
        ValueError: unknown name or bad argument.
    """
    check_one_of("space name", name, SPACE_NAMES)
    return SPACES[name](**kwargs)


__all__ = ["MobileNetSpace", "DartsSpace", "SearchNetSpace", "DARTS_OPS", "SPACES", "SPACE_NAMES", "build_space"]
