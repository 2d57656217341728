"""A DARTS-style cell search space built from ``nnabla_nas.module`` blocks."""
import logging
from collections import OrderedDict

import nnabla.functions as F
from nnabla_nas.module import (AvgPool, Conv, DwConv, GlobalAvgPool, Identity, Linear, MaxPool,
                               Module, ModuleList, ReLU, Sequential, Zero)

from ...checks import check_seed
from ...constants import MAX_BLOCKS
from .common import ZERO, SpaceBase, _bn, _check_input, _check_int_tuple, _check_mode, _check_pos_int

logger = logging.getLogger(__name__)

DARTS_OPS = ('skip', 'zero', 'sep_conv_3x3', 'sep_conv_5x5', 'dil_conv_3x3',
             'max_pool_3x3', 'avg_pool_3x3')


def _relu_conv_bn(cin, cout, stride, rng):
    return Sequential(OrderedDict([
        ('act', ReLU()),
        ('conv', Conv(cin, cout, (1, 1), stride=(stride, stride), with_bias=False, rng=rng)),
        ('bn', _bn(cout)),
    ]))


def _sep_conv(c, k, stride, rng):
    p = k // 2
    return Sequential(OrderedDict([
        ('act1', ReLU()),
        ('dw1', DwConv(c, (k, k), pad=(p, p), stride=(stride, stride), with_bias=False, rng=rng)),
        ('pw1', Conv(c, c, (1, 1), with_bias=False, rng=rng)),
        ('bn1', _bn(c)),
        ('act2', ReLU()),
        ('dw2', DwConv(c, (k, k), pad=(p, p), with_bias=False, rng=rng)),
        ('pw2', Conv(c, c, (1, 1), with_bias=False, rng=rng)),
        ('bn2', _bn(c)),
    ]))


def _dil_conv(c, k, stride, rng):
    p = k - 1  # dilation 2 keeps the size at stride 1
    return Sequential(OrderedDict([
        ('act', ReLU()),
        ('dw', DwConv(c, (k, k), pad=(p, p), stride=(stride, stride), dilation=(2, 2),
                      with_bias=False, rng=rng)),
        ('pw', Conv(c, c, (1, 1), with_bias=False, rng=rng)),
        ('bn', _bn(c)),
    ]))


def _darts_op(name, c, stride, rng):
    if name == 'skip':
        return Identity() if stride == 1 else _relu_conv_bn(c, c, stride, rng)
    if name == 'zero':
        return Zero(stride=(stride, stride))
    if name.startswith('sep_conv_'):
        return _sep_conv(c, int(name[-1]), stride, rng)
    if name.startswith('dil_conv_'):
        return _dil_conv(c, int(name[-1]), stride, rng)
    if name == 'max_pool_3x3':
        return MaxPool((3, 3), stride=(stride, stride), pad=(1, 1))
    if name == 'avg_pool_3x3':
        return AvgPool((3, 3), stride=(stride, stride), pad=(1, 1))
    raise ValueError(f"unknown DARTS op {name!r}")  # guarded by validation


class DartsSpace(SpaceBase):
    r"""DARTS-style cell search space.

    Layout: stem (3x3 conv + BN, ``channels`` outputs) -> ``n_cells`` cells -> global
    average pooling -> linear. A cell takes the outputs of the two previous cells
    (the stem stands in for missing ones), preprocesses each with ReLU + 1x1 conv +
    BN to the cell's channel count (with stride 2 when the previous cell was a
    reduction cell, to match sizes), and computes ``n_nodes`` intermediate nodes;
    node ``i`` is the sum over every earlier state ``j`` (2 inputs, then nodes) of
    ``edge_ij(state_j)``. The cell output is the channel concatenation of its nodes
    (``n_nodes x`` cell channels). Reduction cells (indices in ``reduction_cells``)
    double the channel count and use stride 2 on edges from the two cell inputs.

    Edge candidates are ``ops`` in the given order. Known ops: ``skip`` (identity;
    ReLU + 1x1 conv stride 2 + BN when reducing), ``zero`` (``Zero``, strided when
    reducing), ``sep_conv_{3,5,7}x{3,5,7}`` (two stacked ReLU + depthwise + pointwise +
    BN), ``dil_conv_{3,5}x{3,5}`` (ReLU + dilated depthwise + pointwise + BN),
    ``max_pool_3x3`` and ``avg_pool_3x3``.

    Architecture parameters are shared as in DARTS: edge ``(node i, input j)`` of
    every normal cell uses the same alpha, and likewise for reduction cells. Choice
    groups are the normal-cell edges and the reduction-cell edges, each in
    (node, input) order, the cell type met first in the network coming first.

    In a derived network (``choices`` given) an edge whose choice is ``'zero'`` is
    dropped. A node all of whose edges are dropped keeps a single ``Zero`` edge from
    the cell's first input, so it still yields zeros of the right shape and the
    concatenation keeps its channel count. A preprocessing conv no kept edge reads is
    not built.

    Args:
        in_channels: channels of the input images.
        n_classes: number of output classes.
        channels: channels of the stem and of each node of the first cells.
        n_cells: number of cells.
        n_nodes: intermediate nodes per cell.
        reduction_cells: indices of the reduction cells.
        ops: candidate op names of every edge, in index order.
        mode: MixedOp mode, one of ``('full', 'sample', 'max')``.
        choices: one candidate index per choice group to build the derived network.
        name: module name.
        seed: seed of weight initialisation and of MixedOp sampling.
    """

    KNOWN_OPS = ('skip', 'zero', 'sep_conv_3x3', 'sep_conv_5x5', 'sep_conv_7x7',
                 'dil_conv_3x3', 'dil_conv_5x5', 'max_pool_3x3', 'avg_pool_3x3')

    def __init__(self, in_channels=1, n_classes=10, channels=8, n_cells=3, n_nodes=2,
                 reduction_cells=(1,), ops=DARTS_OPS, mode='full', choices=None, name='',
                 seed=0):
        Module.__init__(self, name=name)
        config = self._validate(in_channels=in_channels, n_classes=n_classes, channels=channels,
                                n_cells=n_cells, n_nodes=n_nodes,
                                reduction_cells=reduction_cells, ops=ops, seed=seed)
        config.update(mode=_check_mode(mode), choices=choices, name=name)
        groups = self._plan_groups(config)
        self._init_common(config, groups, config['seed'])
        c, rng = config, self._rng
        edges = self._edges(c['n_nodes'])
        # choice-group index of each (cell type, edge)
        group_index = {name_: i for i, (name_, _) in enumerate(groups)}

        self.stem = Sequential(OrderedDict([
            ('conv', Conv(c['in_channels'], c['channels'], (3, 3), pad=(1, 1), with_bias=False,
                          rng=rng)),
            ('bn', _bn(c['channels'])),
        ]))
        alphas = {}
        if self._choices is None:
            for kind in self._cell_kinds(c):
                alphas[kind] = [self._new_alpha(len(c['ops'])) for _ in edges]

        cells, metas = [], []
        c_pp = c_p = c_cur = c['channels']
        reduction_prev = False
        for i in range(c['n_cells']):
            reduction = i in c['reduction_cells']
            kind = 'reduce' if reduction else 'normal'
            if reduction:
                c_cur *= 2
            kept = []  # (node, src, module)
            for e, (node, src) in enumerate(edges):
                stride = 2 if reduction and src < 2 else 1
                group = group_index[self._edge_group_name(kind, node, src)]
                if self._choices is None:
                    cands = [_darts_op(op, c_cur, stride, rng) for op in c['ops']]
                    kept.append((node, src, self._mixed(cands, alpha=alphas[kind][e],
                                                        name=f'cell{i}/node{node}/input{src}')))
                else:
                    op = c['ops'][self._choices[group]]
                    if op != ZERO:
                        kept.append((node, src, _darts_op(op, c_cur, stride, rng)))
            if self._choices is not None:
                for node in range(c['n_nodes']):
                    if not any(n == node for n, _, _ in kept):
                        logger.debug("cell %d node %d: every edge chose zero; keeping one Zero",
                                     i, node)
                        kept.append((node, 0, Zero(stride=(2, 2) if reduction else (1, 1))))
                kept.sort(key=lambda t: (t[0], t[1]))
            used = {src for _, src, _ in kept}
            cell = Module(name=f'cell{i}')
            if 0 in used:
                cell.preprocess0 = _relu_conv_bn(c_pp, c_cur, 2 if reduction_prev else 1, rng)
            if 1 in used:
                cell.preprocess1 = _relu_conv_bn(c_p, c_cur, 1, rng)
            cell.edges = ModuleList([m for _, _, m in kept])
            cells.append(cell)
            metas.append(dict(reduction=reduction, edges=[(n, s) for n, s, _ in kept],
                              has_input=(0 in used, 1 in used), out_channels=c['n_nodes'] * c_cur))
            c_pp, c_p = c_p, c['n_nodes'] * c_cur
            reduction_prev = reduction
        self.cells = ModuleList(cells)
        self._cell_meta = metas
        self.pool = GlobalAvgPool()
        self.classifier = Linear(c_p, c['n_classes'], rng=rng)

    @staticmethod
    def _edges(n_nodes):
        return [(node, src) for node in range(n_nodes) for src in range(node + 2)]

    @staticmethod
    def _edge_group_name(kind, node, src):
        return f'{kind}/node{node}/input{src}'

    @staticmethod
    def _cell_kinds(c):
        kinds = []
        for i in range(c['n_cells']):
            kind = 'reduce' if i in c['reduction_cells'] else 'normal'
            if kind not in kinds:
                kinds.append(kind)
        return kinds

    @classmethod
    def _plan_groups(cls, c):
        return [(cls._edge_group_name(kind, node, src), list(c['ops']))
                for kind in cls._cell_kinds(c) for node, src in cls._edges(c['n_nodes'])]

    @classmethod
    def _validate(cls, in_channels=1, n_classes=10, channels=8, n_cells=3, n_nodes=2,
                  reduction_cells=(1,), ops=DARTS_OPS, seed=0, name=''):
        n_cells = _check_pos_int('n_cells', n_cells, high=MAX_BLOCKS)
        reduction_cells = _check_int_tuple('reduction_cells', reduction_cells,
                                           allowed=range(n_cells), unique=True, allow_empty=True)
        if isinstance(ops, (str, bytes)) or not hasattr(ops, '__iter__'):
            raise ValueError(f"ops must be a sequence of op names from {cls.KNOWN_OPS}, got {ops!r}")
        ops = tuple(ops)
        if not ops:
            raise ValueError(f"ops must not be empty; known ops: {cls.KNOWN_OPS}")
        for op in ops:
            if op not in cls.KNOWN_OPS:
                raise ValueError(f"ops must be names from {cls.KNOWN_OPS}, got {op!r}")
        if len(set(ops)) != len(ops):
            raise ValueError(f"ops must not repeat a name, got {ops!r}")
        check_seed(seed)
        return dict(in_channels=_check_pos_int('in_channels', in_channels),
                    n_classes=_check_pos_int('n_classes', n_classes),
                    channels=_check_pos_int('channels', channels), n_cells=n_cells,
                    n_nodes=_check_pos_int('n_nodes', n_nodes, high=MAX_BLOCKS),
                    reduction_cells=tuple(sorted(reduction_cells)), ops=ops, seed=int(seed))

    @property
    def cell_out_channels(self):
        """list of int: output channels of each cell (n_nodes x the cell's channels)."""
        return [m['out_channels'] for m in self._cell_meta]

    def call(self, input):
        _check_input(input, self._config['in_channels'])
        s0 = s1 = self.stem(input)
        n_nodes = self._config['n_nodes']
        for cell, meta in zip(self.cells, self._cell_meta):
            states = [cell.preprocess0(s0) if meta['has_input'][0] else None,
                      cell.preprocess1(s1) if meta['has_input'][1] else None]
            edge_list = list(zip(meta['edges'], cell.edges))
            for node in range(n_nodes):
                terms = [op(states[src]) for (n, src), op in edge_list if n == node]
                states.append(sum(terms[1:], terms[0]))
            nodes = states[2:]
            s0, s1 = s1, (F.concatenate(*nodes, axis=1) if len(nodes) > 1 else nodes[0])
        return self.classifier(self.pool(s1))

    def extra_repr(self):
        return (f"n_choice_groups={self.n_choice_groups}, mode={self._config['mode']}, "
                f"derived={self.is_derived}")
