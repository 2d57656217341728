"""Signatures: the readable keys the cache stores layer measurements under."""
import os
import subprocess
import sys

import nnabla as nn
import nnabla.functions as F
import pytest
from nnabla_nas.module import BatchNormalization, Conv

from nas_hw.measure.signature import fmt_shape, function_signature, module_signature, with_batch

from tests.conftest import REPO as ROOT

_SCRIPT = """
import nnabla as nn, nnabla.functions as F
from nnabla_nas.module import Conv, BatchNormalization
from nas_hw.measure.signature import function_signature, module_signature
x = nn.Variable((2, 3, 8, 8))
y = F.convolution(x, nn.Variable((4, 3, 3, 3)), None, pad=(1, 1), stride=(2, 2))
z = F.batch_normalization(y, *[nn.Variable((1, 4, 1, 1)) for _ in range(4)], batch_stat=False)
print(function_signature(y.parent))
print(function_signature(z.parent))
print(module_signature(Conv(3, 4, (3, 3), pad=(1, 1)), [(2, 3, 8, 8)]))
print(module_signature(BatchNormalization(4, 4), [(2, 4, 8, 8)]))
"""


def _signatures_in_new_process():
    out = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, cwd=ROOT,
                         timeout=120, env=dict(os.environ, PYTHONHASHSEED="random"))
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()


def test_signatures_are_stable_across_processes():
    first, second = _signatures_in_new_process(), _signatures_in_new_process()
    assert len(first) == 4 and first == second
    assert all("0x" not in s for s in first)


def test_function_signature_is_readable_and_holds_args_shapes_dtypes():
    x = nn.Variable((1, 3, 32, 32))
    y = F.convolution(x, nn.Variable((16, 3, 3, 3)), None, pad=(1, 1), stride=(1, 1))
    sig = function_signature(y.parent)
    assert sig.startswith("fn:Convolution|")
    assert "pad=(1,1)" in sig and "stride=(1,1)" in sig
    assert "in=1x3x32x32:float32,16x3x3x3:float32" in sig


def test_batch_size_is_part_of_the_key():
    x1, x8 = nn.Variable((1, 3, 8, 8)), nn.Variable((8, 3, 8, 8))
    s1, s8 = function_signature(F.relu(x1).parent), function_signature(F.relu(x8).parent)
    assert s1 != s8 and "in=8x3x8x8" in s8
    relu = F.relu(x1).parent
    assert function_signature(relu, input_shapes=[with_batch(x1.shape, 8)]) == s8
    conv = Conv(3, 4, (3, 3))
    assert module_signature(conv, [(1, 3, 8, 8)]) != module_signature(conv, [(8, 3, 8, 8)])
    assert with_batch((1, 3, 8, 8), None) == (1, 3, 8, 8) and with_batch((), 4) == ()


@pytest.mark.parametrize("a, b", [
    (dict(pad=(1, 1), stride=(1, 1)), dict(pad=(1, 1), stride=(2, 2))),
    (dict(pad=(0, 0), stride=(1, 1)), dict(pad=(1, 1), stride=(1, 1))),
    (dict(pad=(1, 1), dilation=(1, 1)), dict(pad=(1, 1), dilation=(2, 2))),
])
def test_different_arguments_give_different_keys(a, b):
    x, w = nn.Variable((1, 3, 16, 16)), nn.Variable((4, 3, 3, 3))
    sa = function_signature(F.convolution(x, w, None, **a).parent)
    sb = function_signature(F.convolution(x, w, None, **b).parent)
    assert sa != sb


def test_module_signature_separates_class_args_and_params():
    shapes = [(1, 3, 8, 8)]
    conv_a = module_signature(Conv(3, 4, (3, 3), pad=(1, 1)), shapes)
    conv_b = module_signature(Conv(3, 4, (3, 3), pad=(0, 0)), shapes)
    conv_c = module_signature(Conv(3, 8, (3, 3), pad=(1, 1)), shapes)
    assert len({conv_a, conv_b, conv_c}) == 3
    assert conv_a.startswith("mod:Conv(") and "in=1x3x8x8" in conv_a and "params=" in conv_a
    bn = module_signature(BatchNormalization(3, 4), shapes)
    assert bn.startswith("mod:BatchNormalization(") and bn != conv_a


def test_dtype_is_part_of_the_key():
    x = nn.Variable((1, 3))
    relu = F.relu(x).parent
    assert function_signature(relu, dtypes=["float32"]) != function_signature(relu, dtypes=["float16"])
    assert fmt_shape(()) == "scalar" and fmt_shape((2, 3)) == "2x3"


# -- reading fn: signatures back (nas-hw cache verify rebuilds functions from them) ----------------
def _search_space_graphs():
    """Output Variables of every search space nas_hw is used with, every candidate in the graph:
    nas_hw's own spaces and the real nnabla_nas 0.15 MobileNetV2 and DARTS SearchNets."""
    import nas_hw  # noqa: F401  (the wheel's missing OFA subpackage)
    from nnabla_nas.contrib.classification import darts, mobilenet

    from nas_hw.search.spaces import DartsSpace, MobileNetSpace

    nets = [(MobileNetSpace(in_channels=3, mode="full"), (1, 3, 32, 32)),
            (DartsSpace(in_channels=3, mode="full"), (1, 3, 32, 32)),
            (mobilenet.SearchNet(num_classes=10, mode="full"), (1, 3, 32, 32)),
            (darts.SearchNet(in_channels=3, init_channels=8, num_cells=3, num_classes=10, mode="full"),
             (1, 3, 32, 32))]
    outs = []
    for net, shape in nets:
        net.apply(training=False)
        with nn.auto_forward(False):
            outs.append(net(nn.Variable(shape)))
    return outs


def test_every_function_of_the_search_spaces_round_trips_through_its_signature():
    import nnabla.function as function_classes
    from nnabla.ext_utils import get_extension_context

    from nas_hw.measure.graph import functions_of
    from nas_hw.measure.signature import parse_function_signature, spec_signature

    ctx = get_extension_context("cpu")
    signatures = {}
    for out in _search_space_graphs():
        for f in functions_of(out):
            signatures.setdefault(function_signature(f), f.info.type_name)
    types = set(signatures.values())
    assert {"Convolution", "DepthwiseConvolution", "BatchNormalization", "ReLU6", "Add2", "Affine"} <= types
    assert len(types) >= 12
    for sig in signatures:
        spec = parse_function_signature(sig)
        assert spec_signature(spec) == sig
        with nn.auto_forward(False):
            fn = getattr(function_classes, spec.type_name)(ctx, **spec.args)
            outs = fn(*[nn.Variable(s) for s in spec.input_shapes])
        rebuilt = (outs[0] if isinstance(outs, (list, tuple)) else outs).parent
        assert function_signature(rebuilt, dtypes=list(spec.dtypes)) == sig, sig


def test_a_parsed_signature_is_timed_like_a_layer():
    from nas_hw.estimators.graph import LatencyGraphEstimator
    from nas_hw.measure.signature import parse_function_signature

    x = nn.Variable((1, 8, 8, 8))
    sig = function_signature(F.depthwise_convolution(x, nn.Variable((8, 3, 3)), pad=(1, 1)).parent)
    est = LatencyGraphEstimator(cache=":memory:", ext_name="cpu", n_run=4, n_warmup=1)
    stats = est.measure_spec(parse_function_signature(sig))
    assert stats.robust > 0 and stats.n_measured == 4 and len(est.cache) == 0


@pytest.mark.parametrize("bad, match", [
    ("mod:Conv(in_channels=3)|params=|in=1x3x8x8", "module signature"),
    ("syn:1", "not a function signature"),
    ("fn:Conv", "malformed"),
    ("fn:Convolution|pad=(1,1|in=1x3x8x8:float32", "unbalanced"),
    ("fn:ReLU|inplace|in=1x3x8x8:float32", "malformed argument"),
    ("fn:ReLU|inplace=False|in=1x3x8x8", "SHAPE:dtype"),
    ("fn:ReLU|inplace=False|in=1xAx8:float32", "bad shape"),
])
def test_unreadable_signatures_are_named(bad, match):
    from nas_hw.measure.signature import parse_function_signature

    with pytest.raises(ValueError, match=match):
        parse_function_signature(bad)


def test_argument_values_read_back_with_their_types():
    from nas_hw.measure.signature import parse_function_signature

    spec = parse_function_signature("fn:X|a=1,b=1.0,c=True,d=None,e=(1,(2,3),()),f=constant,g=-1e-05,h=(3)"
                                    "|in=scalar:float32,2x3:int32")
    assert spec.args == {"a": 1, "b": 1.0, "c": True, "d": None, "e": (1, (2, 3), ()), "f": "constant",
                         "g": -1e-05, "h": (3,)}
    assert isinstance(spec.args["b"], float) and isinstance(spec.args["a"], int)
    assert spec.input_shapes == ((), (2, 3)) and spec.dtypes == ("float32", "int32")
