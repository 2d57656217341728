"""Search spaces built only from ``nnabla_nas.module`` blocks.

Two spaces are provided:

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
import logging
from collections import OrderedDict

import nnabla.functions as F
import numpy as np
from nnabla.initializer import ConstantInitializer
from nnabla_nas.module import (AvgPool, BatchNormalization, Conv, Dropout, DwConv,
                               GlobalAvgPool, Identity, Linear, MaxPool, MixedOp, Module,
                               ModuleList, Parameter, ReLU, ReLU6, Sequential, Zero)

logger = logging.getLogger(__name__)

MODES = ('full', 'sample', 'max')
SPACE_NAMES = ('mobilenet', 'darts')
ZERO = 'zero'
DARTS_OPS = ('skip', 'zero', 'sep_conv_3x3', 'sep_conv_5x5', 'dil_conv_3x3',
             'max_pool_3x3', 'avg_pool_3x3')
ALPHA_NAME = '_alpha'


# ----------------------------------------------------------------------------- validation

def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_pos_int(name, value):
    if not _is_int(value) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _check_int_tuple(name, values, allowed=None, unique=False, allow_empty=False):
    if isinstance(values, (str, bytes)) or not hasattr(values, '__iter__'):
        raise ValueError(f"{name} must be a sequence of ints, got {values!r}")
    values = tuple(values)
    if not values and not allow_empty:
        raise ValueError(f"{name} must not be empty")
    for v in values:
        if not _is_int(v) or (allowed is None and v <= 0) or (allowed is not None
                                                               and v not in allowed):
            what = f"values in {tuple(allowed)}" if allowed is not None else "positive ints"
            raise ValueError(f"{name} must hold {what}, got {values!r}")
    if unique and len(set(values)) != len(values):
        raise ValueError(f"{name} must not repeat a value, got {values!r}")
    return tuple(int(v) for v in values)


def _check_mode(mode):
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return mode


def _check_choices(choices, groups):
    """Validate ``choices`` against ``groups`` [(group_name, candidate_names), ...]."""
    if choices is None:
        return None
    if isinstance(choices, (str, bytes)) or not hasattr(choices, '__iter__'):
        raise ValueError(f"choices must be a list of ints (one per choice group), got {choices!r}")
    choices = list(choices)
    if len(choices) != len(groups):
        raise ValueError(f"choices must hold one index per choice group ({len(groups)} groups: "
                         f"{[g for g, _ in groups]}), got {len(choices)}: {choices!r}")
    for c, (group, names) in zip(choices, groups):
        if not _is_int(c) or not 0 <= c < len(names):
            raise ValueError(f"choice for group {group!r} must be an int in "
                             f"[0, {len(names)}) indexing {list(names)}, got {c!r}")
    return tuple(int(c) for c in choices)


def _check_input(x, in_channels):
    if len(x.shape) != 4 or x.shape[1] != in_channels:
        raise ValueError(f"input must have shape (B, {in_channels}, H, W), got {tuple(x.shape)}")


# ----------------------------------------------------------------------------- base class

class _SpaceBase(Module):
    """Common machinery: stored constructor arguments, choice groups, derivation."""

    def _init_common(self, config, groups, seed):
        self._config = dict(config)
        self._groups = [(g, tuple(names)) for g, names in groups]
        self._choices = _check_choices(config['choices'], self._groups)
        self._rng = np.random.RandomState(seed)

    # -- description of the space
    @property
    def config(self):
        """dict: the constructor arguments this instance was built with."""
        return dict(self._config)

    @property
    def n_choice_groups(self):
        """int: number of architecture-parameter groups (length of ``choices``)."""
        return len(self._groups)

    @property
    def choice_group_names(self):
        """list of str: one readable name per choice group, in ``choices`` order."""
        return [g for g, _ in self._groups]

    @property
    def candidate_names_per_group(self):
        """list of list of str: the candidate names of each choice group, in index order."""
        return [list(names) for _, names in self._groups]

    @property
    def choices(self):
        """tuple of int or None: the chosen candidate per group for a derived network."""
        return self._choices

    @property
    def is_derived(self):
        """bool: True for a fixed network built from ``choices`` (no MixedOp, no alpha)."""
        return self._choices is not None

    def choice_names(self, choices=None):
        """Candidate names for ``choices`` (default: this derived network's choices).

        Args:
            choices: list of int, one per group.

        Returns:
            list of str: the chosen candidate name of each group.
        """
        if choices is None:
            if self._choices is None:
                raise ValueError("this is a search network: pass choices explicitly")
            choices = self._choices
        choices = _check_choices(choices, self._groups)
        return [names[c] for c, (_, names) in zip(choices, self._groups)]

    @classmethod
    def describe_choice_groups(cls, **kwargs):
        """Choice groups of the space the constructor arguments describe, without building it.

        Args:
            **kwargs: constructor arguments (``choices`` and ``mode`` are ignored).

        Returns:
            list of (str, list of str): ``(group_name, candidate_names)`` in ``choices`` order.
        """
        kwargs = dict(kwargs)
        kwargs.pop('choices', None)
        kwargs.pop('mode', None)
        config = cls._validate(**kwargs)
        return [(g, list(names)) for g, names in cls._plan_groups(config)]

    def derive(self, choices):
        """Build the derived fixed network of the same space.

        Args:
            choices: list of int, one candidate index per choice group.

        Returns:
            a new instance of this class with the same constructor arguments and ``choices``.
        """
        config = dict(self._config)
        config['choices'] = list(_check_choices(choices, self._groups))
        return type(self)(**config)

    # -- architecture parameters
    def mixed_ops(self):
        """list of MixedOp: every choice point, in ``get_modules()`` order."""
        return [m for _, m in self.get_modules() if isinstance(m, MixedOp)]

    def get_arch_parameters(self, grad_only=False):
        """The distinct architecture parameters, one per choice group, in group order.

        Args:
            grad_only: keep only parameters with ``need_grad=True``.

        Returns:
            OrderedDict: name -> Parameter (empty for a derived network).
        """
        out, seen = OrderedDict(), set()
        for key, p in self.get_parameters(grad_only=grad_only).items():
            if key.split('/')[-1] == ALPHA_NAME and id(p) not in seen:
                seen.add(id(p))
                out[key] = p
        return out

    def get_net_parameters(self, grad_only=False):
        """All parameters except the architecture parameters.

        Args:
            grad_only: keep only parameters with ``need_grad=True``.

        Returns:
            OrderedDict: name -> Parameter.
        """
        return OrderedDict((k, p) for k, p in self.get_parameters(grad_only=grad_only).items()
                           if k.split('/')[-1] != ALPHA_NAME)

    def argmax_choices(self):
        """The most likely candidate of each group according to the current alphas.

        Returns:
            list of int: one index per group (a derived network returns its own choices).
        """
        if self.is_derived:
            return list(self._choices)
        alphas = list(self.get_arch_parameters().values())
        if len(alphas) != self.n_choice_groups:
            raise RuntimeError(f"found {len(alphas)} architecture parameters for "
                               f"{self.n_choice_groups} choice groups")
        return [int(np.argmax(a.d.ravel())) for a in alphas]

    def _mixed(self, candidates, alpha=None, name=''):
        return MixedOp(candidates, mode=self._config['mode'], alpha=alpha, rng=self._rng,
                       name=name)

    def _new_alpha(self, n):
        return Parameter((n, 1, 1, 1, 1), initializer=ConstantInitializer(0.0))


def _bn(channels):
    return BatchNormalization(channels, 4)


# ----------------------------------------------------------------------------- MobileNet

class MobileNetSpace(_SpaceBase):
    r"""ProxylessNAS / MobileNetV2-style search space.

    Layout: stem (3x3 conv, BN, ReLU6) -> stages of blocks -> head (1x1 conv, BN,
    ReLU6, global average pooling, dropout, linear). Every block is a choice point
    (a ``MixedOp``) over inverted-residual candidates ``ir_k{k}_e{e}`` (1x1 expand
    conv + BN + ReLU6, kxk depthwise conv + BN + ReLU6, 1x1 project conv + BN; the
    expand conv is omitted when ``e == 1``) for every kernel ``k`` in ``kernels`` and
    expansion ``e`` in ``expansions``, ordered kernel-major: ``ir_k3_e3, ir_k3_e6,
    ir_k5_e3, ...``. The first block of a stage changes channels / stride and has no
    residual. Every later block of a stage computes ``x + mixedop(x)`` and, when
    ``zero`` is True, its candidate list ends with ``'zero'`` (choosing it skips the
    block). With the defaults there are 4 blocks, the 2 residual ones with 7
    candidates and the other 2 with 6.

    Args:
        in_channels: channels of the input images.
        n_classes: number of output classes.
        stem_channels: output channels of the stem.
        stage_channels: output channels of each stage.
        stage_blocks: number of blocks of each stage.
        stage_strides: stride (1 or 2) of the first block of each stage.
        kernels: depthwise kernel sizes (odd) offered by every block.
        expansions: expansion ratios offered by every block.
        zero: offer the 'zero' (skip) candidate in residual blocks.
        dropout: dropout probability before the classifier (inactive in inference).
        mode: MixedOp mode, one of ``('full', 'sample', 'max')``.
        choices: one candidate index per block to build the derived fixed network.
        name: module name.
        head_channels: channels of the head's 1x1 conv (None: 4 x last stage channels).
        stem_stride: stride (1 or 2) of the stem conv; 2 suits 224x224 inputs.
        seed: seed of weight initialisation and of MixedOp sampling.
    """

    def __init__(self, in_channels=1, n_classes=10, stem_channels=8, stage_channels=(16, 24),
                 stage_blocks=(2, 2), stage_strides=(1, 2), kernels=(3, 5, 7),
                 expansions=(3, 6), zero=True, dropout=0.0, mode='full', choices=None,
                 name='', head_channels=None, stem_stride=1, seed=0):
        Module.__init__(self, name=name)
        config = self._validate(in_channels=in_channels, n_classes=n_classes,
                                stem_channels=stem_channels, stem_stride=stem_stride,
                                stage_channels=stage_channels,
                                stage_blocks=stage_blocks, stage_strides=stage_strides,
                                kernels=kernels, expansions=expansions, zero=zero,
                                dropout=dropout, head_channels=head_channels, seed=seed)
        config.update(mode=_check_mode(mode), choices=choices, name=name)
        self._init_common(config, self._plan_groups(config), config['seed'])
        rng = self._rng
        c = config

        self.stem = Sequential(OrderedDict([
            ('conv', Conv(c['in_channels'], c['stem_channels'], (3, 3), pad=(1, 1),
                          stride=(c['stem_stride'],) * 2, with_bias=False, rng=rng)),
            ('bn', _bn(c['stem_channels'])),
            ('act', ReLU6()),
        ]))
        blocks, residual = [], []
        for gi, block in enumerate(self._plan_blocks(c)):
            if self._choices is None:
                candidates = [self._candidate(n_, block) for n_ in block['candidates']]
                blocks.append(self._mixed(candidates, name=block['group']))
            else:
                chosen = block['candidates'][self._choices[gi]]
                if chosen == ZERO:  # residual block skipped: x + 0 == x
                    continue
                blocks.append(self._candidate(chosen, block))
            residual.append(block['residual'])
        self.blocks = ModuleList(blocks)
        self._residual = residual
        last = c['stage_channels'][-1]
        head = c['head_channels']
        self.head = Sequential(OrderedDict([
            ('conv', Conv(last, head, (1, 1), with_bias=False, rng=rng)),
            ('bn', _bn(head)),
            ('act', ReLU6()),
            ('pool', GlobalAvgPool()),
            ('dropout', Dropout(c['dropout'])),
            ('classifier', Linear(head, c['n_classes'], rng=rng)),
        ]))

    @staticmethod
    def _validate(in_channels=1, n_classes=10, stem_channels=8, stem_stride=1,
                  stage_channels=(16, 24),
                  stage_blocks=(2, 2), stage_strides=(1, 2), kernels=(3, 5, 7),
                  expansions=(3, 6), zero=True, dropout=0.0, head_channels=None, seed=0,
                  name=''):
        stage_channels = _check_int_tuple('stage_channels', stage_channels)
        stage_blocks = _check_int_tuple('stage_blocks', stage_blocks)
        stage_strides = _check_int_tuple('stage_strides', stage_strides, allowed=(1, 2))
        if not len(stage_channels) == len(stage_blocks) == len(stage_strides):
            raise ValueError("stage_channels, stage_blocks and stage_strides must have the same "
                             f"length, got {len(stage_channels)}, {len(stage_blocks)}, "
                             f"{len(stage_strides)}")
        kernels = _check_int_tuple('kernels', kernels, unique=True)
        if any(k % 2 == 0 for k in kernels):
            raise ValueError(f"kernels must be odd, got {kernels!r}")
        if not isinstance(zero, bool):
            raise ValueError(f"zero must be a bool, got {zero!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) \
                or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
        if stem_stride not in (1, 2) or isinstance(stem_stride, bool):
            raise ValueError(f"stem_stride must be 1 or 2, got {stem_stride!r}")
        if head_channels is None:
            head_channels = 4 * stage_channels[-1]
        if not _is_int(seed) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        return dict(
            in_channels=_check_pos_int('in_channels', in_channels),
            n_classes=_check_pos_int('n_classes', n_classes),
            stem_channels=_check_pos_int('stem_channels', stem_channels),
            stem_stride=int(stem_stride),
            stage_channels=stage_channels, stage_blocks=stage_blocks,
            stage_strides=stage_strides, kernels=kernels,
            expansions=_check_int_tuple('expansions', expansions, unique=True),
            zero=zero, dropout=float(dropout),
            head_channels=_check_pos_int('head_channels', head_channels), seed=int(seed))

    @staticmethod
    def _plan_blocks(c):
        ir_names = [f'ir_k{k}_e{e}' for k in c['kernels'] for e in c['expansions']]
        blocks, cin = [], c['stem_channels']
        for s, (cout, n, stride) in enumerate(zip(c['stage_channels'], c['stage_blocks'],
                                                  c['stage_strides'])):
            for b in range(n):
                residual = b > 0
                names = ir_names + ([ZERO] if residual and c['zero'] else [])
                blocks.append(dict(group=f'stage{s}/block{b}', in_channels=cin,
                                   out_channels=cout, stride=stride if b == 0 else 1,
                                   residual=residual, candidates=names))
                cin = cout
        return blocks

    @classmethod
    def _plan_groups(cls, c):
        return [(b['group'], b['candidates']) for b in cls._plan_blocks(c)]

    def _candidate(self, name, block):
        if name == ZERO:
            return Zero()
        k, e = (int(part[1:]) for part in name.split('_')[1:])
        cin, cout, s = block['in_channels'], block['out_channels'], block['stride']
        hidden = cin * e
        layers = []
        if e != 1:
            layers += [('expand_conv', Conv(cin, hidden, (1, 1), with_bias=False, rng=self._rng)),
                       ('expand_bn', _bn(hidden)), ('expand_act', ReLU6())]
        layers += [('dw_conv', DwConv(hidden, (k, k), pad=(k // 2, k // 2), stride=(s, s),
                                      with_bias=False, rng=self._rng)),
                   ('dw_bn', _bn(hidden)), ('dw_act', ReLU6()),
                   ('project_conv', Conv(hidden, cout, (1, 1), with_bias=False, rng=self._rng)),
                   ('project_bn', _bn(cout))]
        return Sequential(OrderedDict(layers))

    @property
    def candidate_names(self):
        """list of list of str: candidate names of each block (= each choice point)."""
        return self.candidate_names_per_group

    def call(self, input):
        _check_input(input, self._config['in_channels'])
        x = self.stem(input)
        for block, residual in zip(self.blocks, self._residual):
            x = x + block(x) if residual else block(x)
        return self.head(x)

    def extra_repr(self):
        return (f"n_choice_groups={self.n_choice_groups}, mode={self._config['mode']}, "
                f"derived={self.is_derived}")


# ----------------------------------------------------------------------------- DARTS

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


class DartsSpace(_SpaceBase):
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
        n_cells = _check_pos_int('n_cells', n_cells)
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
        if not _is_int(seed) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        return dict(in_channels=_check_pos_int('in_channels', in_channels),
                    n_classes=_check_pos_int('n_classes', n_classes),
                    channels=_check_pos_int('channels', channels), n_cells=n_cells,
                    n_nodes=_check_pos_int('n_nodes', n_nodes),
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
    if name not in SPACES:
        raise ValueError(f"space name must be one of {SPACE_NAMES}, got {name!r}")
    return SPACES[name](**kwargs)
