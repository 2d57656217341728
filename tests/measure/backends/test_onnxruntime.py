"""nas_hw/measure/backends/onnxruntime.py and fusion.py: the runtime's fused kernels as units,
explicit providers and threads in the fingerprint, no-ops, errors naming what fails."""
import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np
import pytest

from nas_hw.errors import BackendUnavailableError, UnsupportedOperationError
from nas_hw.measure.backends import make_backend
from nas_hw.measure.backends.fusion import GraphIndex
from nas_hw.measure.device import fingerprint as nnabla_fingerprint
from nas_hw.measure.timing import TimingStats
from tests.measure.backends.onnx_util import build, requires_onnx

pytestmark = requires_onnx


@pytest.fixture(scope="module")
def ort_backend():
    return make_backend("onnxruntime")


def _types(funcs, units):
    return [[funcs[i].info.type_name for i in u] for u in units]


def conv_bn(x, c, act=None, name="c", depthwise=False):
    if depthwise:
        h = PF.depthwise_convolution(x, (3, 3), pad=(1, 1), name=name)
    else:
        h = PF.convolution(x, c, (3, 3), pad=(1, 1), with_bias=False, name=name)
    h = PF.batch_normalization(h, batch_stat=False, name=name + "bn")
    return act(h) if act else h


X = (1, 8, 8, 8)
PATTERNS = {  # network, level -> the units the runtime runs
    "conv_bn_relu": (lambda x: conv_bn(x, 8, F.relu), "all",
                     [["Convolution", "BatchNormalization", "ReLU"]]),
    "conv_bn_relu6": (lambda x: conv_bn(x, 8, F.relu6), "extended",
                      [["Convolution", "BatchNormalization", "ReLU6"]]),
    "depthwise_bn_relu6": (lambda x: conv_bn(x, 8, F.relu6, depthwise=True), "all",
                           [["DepthwiseConvolution", "BatchNormalization", "ReLU6"]]),
    "residual_all": (lambda x: F.add2(conv_bn(x, 8), x), "all",
                     [["Convolution", "BatchNormalization", "Add2"]]),
    "residual_extended": (lambda x: F.add2(conv_bn(x, 8), x), "extended",
                          [["Convolution", "BatchNormalization"], ["Add2"]]),
    "relu_conv_bn": (lambda x: conv_bn(F.relu(x), 8), "all",
                     [["ReLU"], ["Convolution", "BatchNormalization"]]),
    "pools_concat": (lambda x: F.concatenate(F.max_pooling(x, (3, 3), (1, 1), pad=(1, 1)),
                                             F.average_pooling(x, (3, 3), (1, 1), pad=(1, 1)), axis=1), "all",
                     [["MaxPooling"], ["AveragePooling"], ["Concatenate"]]),
    "head": (lambda x: PF.affine(F.global_average_pooling(x), 10, name="fc"), "all",
             [["GlobalAveragePooling"], ["Affine"]]),
    "nothing_fused_when_disabled": (lambda x: conv_bn(x, 8, F.relu), "disabled",
                                    [["Convolution"], ["BatchNormalization"], ["ReLU"]]),
}


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
def test_units_are_the_runtimes_kernels(pattern):
    fn, level, expected = PATTERNS[pattern]
    xs, y, funcs = build(fn, [X])
    backend = make_backend("onnxruntime", optimization=level)
    assert _types(funcs, backend.units(funcs, xs, [y])) == expected


def test_a_fused_unit_runs_as_one_kernel_and_its_parts_as_several():
    """(At the 'all' level the layout transformation adds reorder kernels around a unit alone.)"""
    backend = make_backend("onnxruntime", optimization="extended")
    xs, y, funcs = build(lambda x: conv_bn(x, 8, F.relu), [X])
    unit = backend.prepare_functions(funcs, xs, [y], [X])
    assert unit.n_kernels == 1 and not unit.noop and 1 <= unit.copies <= 8
    unit.run()
    parts = [backend.prepare_functions([f], [f.inputs[0]], f.outputs, [X]) for f in funcs]
    assert [p.n_kernels for p in parts] == [1, 1, 1]


def test_a_unit_alone_has_its_layout_conversions_taken_off(ort_backend):
    """At the 'all' level a convolution alone converts to and from the blocked layout; inside a
    network it would not: the profiled share of those conversions is taken off."""
    xs, y, funcs = build(lambda x: conv_bn(x, 16, F.relu), [(1, 16, 16, 16)])
    unit = ort_backend.prepare_functions(funcs, xs, [y], [(1, 16, 16, 16)])
    assert unit.n_kernels == 1  # the fused convolution; the reorders are not counted
    assert 0.05 <= unit.share < 1.0
    extended = make_backend("onnxruntime", optimization="extended").prepare_functions(funcs, xs, [y], [(1, 16, 16, 16)])
    assert extended.share == 1.0  # no layout conversion at that level


def test_units_of_a_sampled_mobilenet_block_cover_every_function_once(ort_backend):
    def block(x):
        h = conv_bn(x, 16, F.relu6, name="expand")
        h = conv_bn(h, 16, F.relu6, name="dw", depthwise=True)
        return F.add2(conv_bn(h, 8, name="project"), x)
    xs, y, funcs = build(block, [X])
    units = ort_backend.units(funcs, xs, [y])
    assert sorted(i for u in units for i in u) == list(range(len(funcs)))
    assert len(units) == 3


def test_a_unit_of_constants_only_is_a_noop(ort_backend):
    """A softmax of architecture parameters is folded away by the runtime: it costs nothing."""
    nn.clear_parameters()
    alpha = nn.parameter.get_parameter_or_create("alpha", (1, 4), need_grad=True)
    x = nn.Variable(X)
    y = F.mul2(x, F.reshape(F.softmax(alpha, axis=1), (1, 4, 1, 1)).__getitem__((slice(None), slice(0, 1))))
    from nas_hw.measure.graph import walk

    funcs, _ = walk(y)
    softmax = [f for f in funcs if f.info.type_name == "Softmax"]
    prepared = ort_backend.prepare_functions(softmax, [], softmax[0].outputs, [])
    assert prepared.noop and prepared.run is None and prepared.n_kernels == 0


def test_copies_are_turned_into_one_copys_statistics():
    from nas_hw.measure.backends.base import Prepared

    stats = TimingStats(mean=8e-6, median=6e-6, std=4e-6, min=4e-6, n_kept=10, n_measured=10, value=6e-6)
    one = Prepared(run=lambda: None, copies=4).adjust(stats)
    assert (one.mean, one.median, one.std, one.min, one.value) == pytest.approx((2e-6, 1.5e-6, 1e-6, 1e-6, 1.5e-6))
    assert one.n_kept == 10
    own = Prepared(run=lambda: None, copies=4, share=0.5).adjust(stats)
    assert (own.mean, own.median) == pytest.approx((1e-6, 0.75e-6))
    assert Prepared(run=lambda: None).adjust(stats) is stats


def test_the_whole_network_keeps_the_input_data_you_set(ort_backend):
    xs, y, funcs = build(lambda x: conv_bn(x, 8, F.relu), [X])
    net = ort_backend.prepare_network(y)
    net.run()
    assert net.copies == 1


def test_fingerprint_names_runtime_provider_threads_and_level(ort_backend):
    import onnxruntime as ort

    fp = ort_backend.fingerprint
    assert fp.key.startswith("onnxruntime|CPUExecutionProvider|")
    assert f"ort={ort.__version__}" in fp.key and "threads=intra:1" in fp.key and "opt=all" in fp.key
    keys = {fp.key, make_backend("onnxruntime", threads=2).fingerprint.key,
            make_backend("onnxruntime", optimization="extended").fingerprint.key, nnabla_fingerprint("cpu").key}
    assert len(keys) == 4  # never mixed with each other, nor with nnabla's rows
    assert ort_backend.settings["provider"] == "CPUExecutionProvider"


def test_a_missing_provider_names_the_available_ones():
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("CUDAExecutionProvider is available here")
    with pytest.raises(BackendUnavailableError, match=r"CUDAExecutionProvider is not available.*CPUExecutionProvider"):
        make_backend("onnxruntime", provider="cuda")


@pytest.mark.parametrize("kwargs,match", [
    ({"provider": "gpu"}, "provider must be one of"),
    ({"threads": 0}, "threads must be an integer >= 1"),
    ({"optimization": "max"}, "optimization must be one of"),
    ({"type_config": "half"}, "type_config must be one of"),
    ({"ext_name": "cpu"}, r"takes options .*unknown \['ext_name'\]"),
])
def test_bad_settings_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_backend("onnxruntime", **kwargs)


def test_a_function_the_exporter_lacks_fails_by_name(ort_backend):
    xs, y, funcs = build(lambda x: F.exp(conv_bn(x, 8)), [X])
    with pytest.raises(UnsupportedOperationError, match=r"\['Exp'\]"):
        ort_backend.units(funcs, xs, [y])
    with pytest.raises(UnsupportedOperationError, match=r"\['Exp'\]"):
        ort_backend.prepare_network(y)


def test_graph_index_boundaries():
    xs, y, funcs = build(lambda x: F.add2(F.relu(x), F.sigmoid(x)), [X])
    index = GraphIndex(funcs, xs, [y])
    kinds = [f.info.type_name for f in funcs]
    add, relu = kinds.index("Add2"), kinds.index("ReLU")
    ins, outs = index.boundary([add])
    assert len(ins) == 2 and outs == [y]
    ins, outs = index.boundary([relu])
    assert ins == xs and outs == list(funcs[relu].outputs)


def test_plan_signs_single_functions_as_before_and_fused_units_with_their_wiring(ort_backend):
    from nas_hw.measure.backends.nnabla import NnablaBackend
    from nas_hw.measure.backends.units import plan_units
    from nas_hw.measure.signature import function_signature

    xs, y, funcs = build(lambda x: F.add2(conv_bn(x, 8, F.relu), x), [X])
    single = plan_units(NnablaBackend(), funcs, xs, [y])
    assert [u.signature for u in single] == [function_signature(f) for f in funcs]
    assert [u.name for u in single] == ["0:Convolution", "1:BatchNormalization", "2:ReLU", "3:Add2"]
    fused = plan_units(make_backend("onnxruntime", optimization="extended"), funcs, xs, [y], prefix="outside/",
                       shapes={xs[0]: (4, 8, 8, 8)})
    assert [u.name for u in fused] == ["outside/0:Convolution+BatchNormalization+ReLU", "outside/3:Add2"]
    conv = fused[0]
    assert conv.signature.startswith("unit[fn:Convolution|") and "<-x0,c;fn:BatchNormalization" in conv.signature
    assert "in=4x8x8x8" in conv.signature and conv.input_shapes == ((4, 8, 8, 8),)
    assert len(fused[1].inputs) == 2 and fused[1].outputs == (y,)


def test_a_unit_signature_too_long_for_the_store_keeps_its_types_and_a_digest():
    from nas_hw.constants import MAX_SIGNATURE_CHARS
    from nas_hw.measure.backends.fusion import unit_signature

    xs, y, funcs = build(lambda x: F.relu(conv_bn(x, 8)), [X])
    short = unit_signature(["a", "b", "c"], funcs, xs)
    assert short.startswith("unit[a<-x0") and len(short) < 100
    long_sigs = ["s" * (MAX_SIGNATURE_CHARS // 2)] * 3
    long = unit_signature(long_sigs, funcs, xs)
    assert long.startswith("unit[3 functions: Convolution+BatchNormalization+ReLU]#sha256=")
    assert len(long) < 200 and long != unit_signature(["t" * (MAX_SIGNATURE_CHARS // 2)] * 3, funcs, xs)
