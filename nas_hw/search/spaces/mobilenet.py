"""A ProxylessNAS / MobileNetV2-style search space built from ``nnabla_nas.module`` blocks."""
from collections import OrderedDict

from nnabla_nas.module import (Conv, Dropout, DwConv, GlobalAvgPool, Linear, Module, ModuleList, ReLU6,
                               Sequential, Zero)

from ...checks import check_seed
from ...constants import MAX_BLOCKS, MAX_EXPANSION, MAX_KERNEL
from .common import ZERO, SpaceBase, _bn, _check_input, _check_int_tuple, _check_mode, _check_pos_int


class MobileNetSpace(SpaceBase):
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
        stage_blocks = _check_int_tuple('stage_blocks', stage_blocks, high=MAX_BLOCKS)
        stage_strides = _check_int_tuple('stage_strides', stage_strides, allowed=(1, 2))
        if not len(stage_channels) == len(stage_blocks) == len(stage_strides):
            raise ValueError("stage_channels, stage_blocks and stage_strides must have the same "
                             f"length, got {len(stage_channels)}, {len(stage_blocks)}, "
                             f"{len(stage_strides)}")
        kernels = _check_int_tuple('kernels', kernels, unique=True, high=MAX_KERNEL)
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
        check_seed(seed)
        return dict(
            in_channels=_check_pos_int('in_channels', in_channels),
            n_classes=_check_pos_int('n_classes', n_classes),
            stem_channels=_check_pos_int('stem_channels', stem_channels),
            stem_stride=int(stem_stride),
            stage_channels=stage_channels, stage_blocks=stage_blocks,
            stage_strides=stage_strides, kernels=kernels,
            expansions=_check_int_tuple('expansions', expansions, unique=True, high=MAX_EXPANSION),
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
