"""Tests of nas_hw.search.spaces: the MobileNet and DARTS search spaces and their derived nets."""
import nnabla as nn
import numpy as np
import pytest
from nnabla_nas.module import Conv, DwConv, Identity, Zero

from nas_hw.measure.graph import functions_of
from nas_hw.search.spaces import DARTS_OPS, DartsSpace, MobileNetSpace, build_space
from nas_hw.search.spaces.common import MODES

SPACES = [MobileNetSpace, DartsSpace]


def mixed_ops(model):
    """Choice points found by duck typing, in get_modules() order."""
    return [m for _, m in model.get_modules() if hasattr(m, '_ops') and hasattr(m, '_alpha')]


def distinct_alphas(model):
    out = []
    for m in mixed_ops(model):
        if not any(a is m._alpha for a in out):
            out.append(m._alpha)
    return out


def forward(model, hw, batch=2, in_channels=1, seed=0):
    x = nn.Variable((batch, in_channels, hw, hw))
    x.d = np.random.RandomState(seed).randn(*x.shape)
    y = model(x)
    y.forward()
    return y


def first_choices(model, pick=0):
    return [pick % len(names) for names in model.candidate_names_per_group]


@pytest.mark.parametrize('cls', SPACES)
@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('hw', [8, 32])
def test_builds_and_forwards_in_training_and_inference(cls, mode, hw):
    model = cls(mode=mode, n_classes=7)
    y = forward(model, hw)
    assert y.shape == (2, 7) and np.all(np.isfinite(y.d))
    y.backward()
    model.apply(training=False)
    y = forward(model, hw)
    assert y.shape == (2, 7) and np.all(np.isfinite(y.d))
    # every choice point saw an input in full mode (sample/max call only the chosen op)
    for m in mixed_ops(model):
        assert m.input_shapes and m.input_shapes[0][0] == 2


@pytest.mark.parametrize('cls', SPACES)
def test_224_input_builds_graph(cls):
    kwargs = dict(stem_stride=2) if cls is MobileNetSpace else {}
    model = cls(in_channels=3, **kwargs)
    y = model(nn.Variable((1, 3, 224, 224)))  # builds the graph (shape inference) only
    assert y.shape == (1, 10)


def test_mobilenet_choice_points_and_candidates():
    model = MobileNetSpace()
    mixed = mixed_ops(model)
    assert len(mixed) == 4 == model.n_choice_groups == len(distinct_alphas(model))
    assert [len(m._ops) for m in mixed] == [6, 7, 6, 7]
    ir = ['ir_k3_e3', 'ir_k3_e6', 'ir_k5_e3', 'ir_k5_e6', 'ir_k7_e3', 'ir_k7_e6']
    assert model.candidate_names == [ir, ir + ['zero'], ir, ir + ['zero']]
    assert model.candidate_names_per_group == model.candidate_names
    assert model.choice_group_names == ['stage0/block0', 'stage0/block1',
                                        'stage1/block0', 'stage1/block1']
    for m in mixed:
        assert m._alpha.shape == (len(m._ops), 1, 1, 1, 1)
    assert isinstance(mixed[1]._ops[6], Zero) and isinstance(mixed[3]._ops[6], Zero)
    # candidate order matches the names: kernel-major, then expansion
    dw = [[mod for _, mod in op.get_modules() if isinstance(mod, DwConv)][0] for op in mixed[2]._ops]
    assert [d._kernel for d in dw] == [(3, 3), (3, 3), (5, 5), (5, 5), (7, 7), (7, 7)]
    assert [d._in_channels for d in dw] == [48, 96] * 3  # 16 input channels x expansion
    assert all(d._stride == (2, 2) for d in dw)  # first block of stage 1 has stride 2
    assert not any(isinstance(op, Zero) for op in mixed[0]._ops)


def test_mobilenet_other_configuration():
    model = MobileNetSpace(in_channels=3, stem_channels=4, stage_channels=(8, 8, 12),
                           stage_blocks=(1, 3, 2), stage_strides=(2, 1, 2), kernels=(3,),
                           expansions=(1, 4), zero=False, dropout=0.3, head_channels=20)
    assert [len(m._ops) for m in mixed_ops(model)] == [2, 2, 2, 2, 2, 2]
    assert all('zero' not in names for names in model.candidate_names)
    y = forward(model, 16, in_channels=3)
    assert y.shape == (2, 10)
    # expansion 1 has no expand conv: only the depthwise and the project conv
    convs = [m for _, m in mixed_ops(model)[0]._ops[0].get_modules() if isinstance(m, Conv)]
    assert len(convs) == 1


def test_mobilenet_residual_addition_is_a_plain_op():
    net = MobileNetSpace(choices=[0, 0, 0, 0])
    net.apply(training=False)
    x = nn.Variable((1, 1, 8, 8))
    y = net(x)
    names = [f.info.type_name for f in functions_of(y)]
    assert names.count('Add2') == 2  # the two residual blocks
    skipped = MobileNetSpace(choices=[0, 6, 0, 6])  # 'zero' in both residual blocks
    y2 = skipped(x)
    assert [f.info.type_name for f in functions_of(y2)].count('Add2') == 0
    assert len(skipped.blocks) == 2 and len(net.blocks) == 4


def test_mobilenet_dropout_is_identity_in_inference():
    model = MobileNetSpace(dropout=0.5, choices=[1, 1, 1, 1])
    model.apply(training=False)
    a = forward(model, 8).d.copy()
    b = forward(model, 8).d.copy()
    np.testing.assert_array_equal(a, b)
    model.apply(training=True)
    names = [f.info.type_name for f in functions_of(model(nn.Variable((2, 1, 8, 8))))]
    assert 'Dropout' in names


def test_darts_choice_points_and_candidates():
    model = DartsSpace()
    mixed = mixed_ops(model)
    assert len(mixed) == 3 * 5  # 3 cells x (2 + 3) edges
    assert all(len(m._ops) == len(DARTS_OPS) for m in mixed)
    assert model.n_choice_groups == 10 == len(distinct_alphas(model))
    assert model.candidate_names_per_group == [list(DARTS_OPS)] * 10
    assert model.choice_group_names[:2] == ['normal/node0/input0', 'normal/node0/input1']
    assert model.choice_group_names[5] == 'reduce/node0/input0'
    assert model.cell_out_channels == [16, 32, 32]
    # candidate order follows ops; reduction edges from the inputs are strided
    red = mixed[5]
    assert isinstance(mixed[0]._ops[0], Identity) and isinstance(mixed[0]._ops[1], Zero)
    assert not isinstance(red._ops[0], Identity) and red._ops[1]._stride == (2, 2)
    assert mixed[5 + 4]._ops[1]._stride == (1, 1)  # node1 <- node0 edge is not strided


def test_darts_alphas_are_shared_across_cells():
    model = DartsSpace(n_cells=5, reduction_cells=(1, 3))
    cells = [mixed_ops_of(model, i) for i in range(5)]
    for e in range(5):
        assert cells[0][e]._alpha is cells[2][e]._alpha is cells[4][e]._alpha
        assert cells[1][e]._alpha is cells[3][e]._alpha
        assert cells[0][e]._alpha is not cells[1][e]._alpha
    assert len({id(m._alpha) for c in cells for m in c}) == 10
    # the shared alpha collects gradient from every cell that uses it
    y = forward(model, 8)
    for a in distinct_alphas(model):
        a.grad.zero()
    y.backward(clear_buffer=False)
    assert all(np.abs(a.g).sum() > 0 for a in distinct_alphas(model))


def mixed_ops_of(model, cell_index):
    return mixed_ops(model.cells[cell_index])


@pytest.mark.parametrize('cls, kwargs', [
    (MobileNetSpace, {}),
    (DartsSpace, {}),
    (DartsSpace, dict(reduction_cells=(0, 2), n_cells=3)),
    (DartsSpace, dict(reduction_cells=())),
])
def test_group_order_follows_get_modules(cls, kwargs):
    model = cls(**kwargs)
    order = distinct_alphas(model)
    arch = list(model.get_arch_parameters().values())
    assert len(arch) == len(order) == model.n_choice_groups
    assert all(a is b for a, b in zip(arch, order))
    described = cls.describe_choice_groups(**kwargs)
    assert [g for g, _ in described] == model.choice_group_names
    assert [c for _, c in described] == model.candidate_names_per_group
    net_params = model.get_net_parameters()
    assert not any(any(p is a for a in arch) for p in net_params.values())


def test_darts_reduction_first_puts_reduce_groups_first():
    model = DartsSpace(reduction_cells=(0,), n_cells=2)
    assert model.choice_group_names[0].startswith('reduce/')
    assert model.choice_group_names[5].startswith('normal/')


@pytest.mark.parametrize('cls', SPACES)
@pytest.mark.parametrize('pick', [0, 1, 3, 6])
def test_derived_nets_build_forward_and_have_no_mixedop(cls, pick):
    space = cls()
    choices = first_choices(space, pick)
    net = space.derive(choices)
    assert type(net) is cls and net.is_derived and net.choices == tuple(choices)
    assert not mixed_ops(net) and not net.get_arch_parameters()
    assert not any(k.endswith('_alpha') for k in net.get_parameters())
    assert net.choice_names() == [n[c] for n, c in zip(space.candidate_names_per_group, choices)]
    for hw in (8, 32):
        y = forward(net, hw)
        assert y.shape == (2, 10) and np.all(np.isfinite(y.d))
    net.apply(training=False)
    assert forward(net, 8).shape == (2, 10)
    # constructor path gives the same architecture
    direct = cls(choices=choices)
    assert sorted(p.shape for p in direct.get_parameters().values()) == \
        sorted(p.shape for p in net.get_parameters().values())


def test_derive_keeps_constructor_args():
    space = MobileNetSpace(stem_channels=4, kernels=(3, 5), expansions=(2,), dropout=0.1, seed=3)
    net = space.derive([1, 2, 0, 1])
    cfg = net.config
    assert cfg['stem_channels'] == 4 and cfg['kernels'] == (3, 5) and cfg['dropout'] == 0.1
    assert cfg['seed'] == 3 and list(cfg['choices']) == [1, 2, 0, 1]
    assert net.choice_names() == ['ir_k5_e2', 'zero', 'ir_k3_e2', 'ir_k5_e2']
    dw = [m for _, m in net.get_modules() if isinstance(m, DwConv)]
    assert [d._kernel for d in dw] == [(5, 5), (3, 3), (5, 5)]  # block 1 skipped
    assert len(net.blocks) == 3


def test_darts_derived_drops_zero_edges_and_survives_all_zero():
    space = DartsSpace()
    zero = DARTS_OPS.index('zero')
    net = space.derive([zero] * space.n_choice_groups)
    # every node keeps one Zero edge from the cell's first input; input 1 is never read
    for cell in net.cells:
        assert len(cell.edges) == 2 and all(isinstance(e, Zero) for e in cell.edges)
        assert 'preprocess1' not in cell.modules and 'preprocess0' in cell.modules
    y = forward(net, 8)
    assert y.shape == (2, 10) and np.all(np.isfinite(y.d))

    skip, sep3 = DARTS_OPS.index('skip'), DARTS_OPS.index('sep_conv_3x3')
    # normal cells read only input 1; reduction cells read both inputs
    normal = [zero, skip, zero, sep3, skip]
    reduce_ = [sep3, zero, skip, zero, zero]
    net = space.derive(normal + reduce_)
    for i, cell in enumerate(net.cells):
        if i == 1:
            assert len(cell.edges) == 2 and 'preprocess1' not in cell.modules
        else:
            assert len(cell.edges) == 3 and 'preprocess0' not in cell.modules
    assert forward(net, 32).shape == (2, 10)


def test_argmax_choices_reads_alphas():
    space = DartsSpace()
    alphas = list(space.get_arch_parameters().values())
    for i, a in enumerate(alphas):
        d = np.zeros(a.shape, np.float32)
        d[i % len(DARTS_OPS)] = 1.0
        a.d = d
    assert space.argmax_choices() == [i % len(DARTS_OPS) for i in range(10)]
    net = space.derive(space.argmax_choices())
    assert net.argmax_choices() == list(net.choices)


def test_build_space():
    assert isinstance(build_space('mobilenet', kernels=(3,)), MobileNetSpace)
    assert isinstance(build_space('darts', n_cells=2), DartsSpace)
    with pytest.raises(ValueError, match="space name must be one of"):
        build_space('resnet')


@pytest.mark.parametrize('cls, kwargs, match', [
    (MobileNetSpace, dict(mode='fair'), 'mode must be one of'),
    (MobileNetSpace, dict(in_channels=0), 'in_channels'),
    (MobileNetSpace, dict(stage_channels=(16,)), 'same length'),
    (MobileNetSpace, dict(stage_strides=(1, 3)), 'stage_strides'),
    (MobileNetSpace, dict(kernels=(3, 4)), 'odd'),
    (MobileNetSpace, dict(kernels=()), 'kernels must not be empty'),
    (MobileNetSpace, dict(expansions=(3, 3)), 'repeat'),
    (MobileNetSpace, dict(dropout=1.0), 'dropout'),
    (MobileNetSpace, dict(zero=1), 'zero must be a bool'),
    (MobileNetSpace, dict(stem_stride=3), 'stem_stride'),
    (MobileNetSpace, dict(choices=[0, 0, 0]), 'one index per choice group'),
    (MobileNetSpace, dict(choices=[0, 6, 6, 0]), "group 'stage1/block0'"),
    (MobileNetSpace, dict(choices=[0, 0.5, 0, 0]), 'must be an int'),
    (DartsSpace, dict(ops=('skip', 'conv_9x9')), 'ops must be names from'),
    (DartsSpace, dict(ops=()), 'ops must not be empty'),
    (DartsSpace, dict(reduction_cells=(3,)), 'reduction_cells'),
    (DartsSpace, dict(n_nodes=0), 'n_nodes'),
    (DartsSpace, dict(channels=True), 'channels'),
    (DartsSpace, dict(choices=[0] * 9), 'one index per choice group'),
])
def test_bad_arguments_raise_clear_errors(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


@pytest.mark.parametrize('cls', SPACES)
def test_bad_input_shape(cls):
    with pytest.raises(ValueError, match=r'input must have shape \(B, 1, H, W\)'):
        cls()(nn.Variable((2, 3, 8, 8)))


def test_sample_mode_is_reproducible_by_seed():
    def picks(seed):
        model = MobileNetSpace(mode='sample', seed=seed)
        out = []
        for _ in range(5):
            forward(model, 8)
            out.append([m.active_index for m in mixed_ops(model)])
        return out
    assert picks(1) == picks(1)
    assert picks(1) != picks(2)
