"""nas_hw/measure/backends/onnx_export.py: every function type the search spaces use, exported and
run on ONNX Runtime, gives nnabla's own output."""
import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np
import pytest

from nas_hw.errors import UnsupportedOperationError
from nas_hw.measure.backends.onnx_export import export, replicated, unsupported
from nas_hw.measure.backends.onnx_ops import CONVERTERS
from tests.measure.backends.onnx_util import build, requires_onnx

pytestmark = requires_onnx

X = (2, 8, 9, 9)
CASES = {
    "conv": (lambda x: PF.convolution(x, 6, (3, 3), pad=(1, 1), stride=(2, 2)), [X]),
    "grouped_dilated_conv": (lambda x: PF.convolution(x, 8, (3, 3), pad=(2, 2), dilation=(2, 2), group=4,
                                                      with_bias=False), [X]),
    "depthwise_conv": (lambda x: PF.depthwise_convolution(x, (5, 5), pad=(2, 2), stride=(2, 2), multiplier=2), [X]),
    "dilated_depthwise_conv": (lambda x: PF.depthwise_convolution(x, (3, 3), pad=(2, 2), dilation=(2, 2),
                                                                  with_bias=False), [X]),
    "batch_norm": (lambda x: PF.batch_normalization(x, batch_stat=False), [X]),
    "batch_norm_no_scale": (lambda x: PF.batch_normalization(x, batch_stat=False, no_scale=True), [X]),
    "batch_norm_no_bias": (lambda x: PF.batch_normalization(x, batch_stat=False, no_bias=True), [X]),
    "relu": (F.relu, [X]),
    "relu6": (lambda x: F.relu6(x * 4), [X]),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), [X]),
    "sigmoid": (F.sigmoid, [X]),
    "tanh": (F.tanh, [X]),
    "swish": (F.swish, [X]),
    "hard_tanh": (lambda x: F.hard_tanh(x * 3), [X]),
    "add2": (F.add2, [X, X]),
    "sub2": (F.sub2, [X, X]),
    "mul2_broadcast": (F.mul2, [X, (1, 8, 1, 1)]),
    "div2": (lambda a, b: F.div2(a, b * b + 1), [X, X]),
    "add_scalar": (lambda x: F.add_scalar(x, 1.5), [X]),
    "mul_scalar_zero": (lambda x: F.mul_scalar(x, 0.0), [X]),
    "max_pool": (lambda x: F.max_pooling(x, (3, 3), (2, 2), pad=(1, 1)), [X]),
    "max_pool_1x1_stride2": (lambda x: F.max_pooling(x, (1, 1), (2, 2)), [X]),
    "avg_pool": (lambda x: F.average_pooling(x, (3, 3), (2, 2), pad=(1, 1)), [X]),
    "avg_pool_excluding_pad": (lambda x: F.average_pooling(x, (3, 3), (1, 1), pad=(1, 1), including_pad=False), [X]),
    "global_avg_pool": (F.global_average_pooling, [X]),
    "affine": (lambda x: PF.affine(x, 10), [X]),
    "affine_base_axis2": (lambda x: PF.affine(x, (3, 4), base_axis=2), [X]),
    "concatenate": (lambda a, b: F.concatenate(a, b, axis=1), [X, (2, 3, 9, 9)]),
    "stack": (lambda a, b: F.stack(a, b, axis=0), [X, X]),
    "slice": (lambda x: F.slice(x, start=(0, 0, 1, 1), stop=(2, 8, 9, 9), step=(1, 1, 1, 1)), [X]),
    "slice_trailing_axes": (lambda x: F.slice(x, start=(1, 2), stop=(7, 9), step=(2, 1)), [X]),
    "sum": (lambda x: F.sum(x, axis=0), [X]),
    "sum_keepdims": (lambda x: F.sum(x, axis=(2, 3), keepdims=True), [X]),
    "mean": (lambda x: F.mean(x, axis=(2, 3)), [X]),
    "softmax": (lambda x: F.softmax(x, axis=1), [X]),
    "reshape": (lambda x: F.reshape(x, (2, -1)), [X]),
    "transpose": (lambda x: F.transpose(x, (0, 2, 3, 1)), [X]),
    "identity": (F.identity, [X]),
}


def _run(exported, xs):
    import onnxruntime as ort

    sess = ort.InferenceSession(exported.serialized(), providers=["CPUExecutionProvider"])
    return sess.run(None, {n: x.d for n, x in zip(exported.input_names, xs)})


@pytest.mark.parametrize("case", sorted(CASES))
def test_exported_function_computes_what_nnabla_computes(case):
    fn, shapes = CASES[case]
    xs, y, funcs = build(fn, shapes)
    y.forward()
    exported = export(funcs, xs, [y])
    (out,) = _run(exported, xs)
    assert out.shape == y.shape
    np.testing.assert_allclose(out, y.d, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(y.d).max())))
    assert set(exported.node_function.values()) == set(range(len(funcs)))  # every node traced back


def test_every_converter_is_tested():
    tested = set()
    for fn, shapes in CASES.values():
        tested.update(f.info.type_name for f in build(fn, shapes)[2])
    assert set(CONVERTERS) <= tested


def test_a_network_at_another_batch_size():
    """The inputs' shapes given to export set the batch; the model runs at it."""
    def net(x):
        h = F.relu(PF.batch_normalization(PF.convolution(x, 4, (3, 3), pad=(1, 1), name="c"), batch_stat=False))
        return PF.affine(F.global_average_pooling(h), 3, name="fc")
    xs, y, funcs = build(net, [(1, 3, 8, 8)])
    exported = export(funcs, xs, [y], input_shapes=[(5, 3, 8, 8)])
    import onnxruntime as ort

    sess = ort.InferenceSession(exported.serialized(), providers=["CPUExecutionProvider"])
    (out,) = sess.run(None, {exported.input_names[0]: np.zeros((5, 3, 8, 8), np.float32)})
    assert out.shape == (5, 3)


def test_unsupported_functions_are_named():
    xs, y, funcs = build(lambda x: F.sin(F.exp(x)), [X])
    assert unsupported(funcs) == ["Exp", "Sin"]
    with pytest.raises(UnsupportedOperationError, match=r"cannot convert nnabla function\(s\) \['Exp', 'Sin'\]") as err:
        export(funcs, xs, [y])
    assert err.value.functions == ["Exp", "Sin"]


@pytest.mark.parametrize("fn,what", [
    (lambda x: PF.batch_normalization(x, batch_stat=True), "batch_stat=True"),
    (lambda x: F.max_pooling(x, (2, 2), ignore_border=False), "ignore_border=False"),
])
def test_arguments_without_an_onnx_equivalent_are_named(fn, what):
    xs, y, funcs = build(fn, [X])
    with pytest.raises(UnsupportedOperationError, match=what):
        export(funcs, xs, [y])


def test_replicated_copies_read_the_same_inputs_and_compute_the_same():
    xs, y, funcs = build(lambda x: F.relu(PF.convolution(x, 4, (3, 3), pad=(1, 1))), [X])
    y.forward()
    many = replicated(export(funcs, xs, [y]), 3)
    outs = _run(many, xs)
    assert len(outs) == 3 and len(many.input_names) == 1
    for out in outs:
        np.testing.assert_allclose(out, y.d, rtol=1e-4, atol=1e-4)
