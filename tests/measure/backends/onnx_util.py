"""What the backend tests share: the skip where the ``onnx`` extra is missing, and small graphs."""
import numpy as np
import nnabla as nn
import pytest

from nas_hw.measure.backends.extras import onnx_available
from nas_hw.measure.graph import walk

requires_onnx = pytest.mark.skipif(
    not onnx_available(), reason="needs the onnx extra: pip install 'nas_hw[onnx]' (onnx, onnxruntime)")


def build(fn, shapes, seed=0):
    """``(inputs, output, functions)`` of ``fn(*inputs)`` built in a fresh parameter scope, inputs
    and parameters filled with seeded random data (variances kept positive)."""
    rng = np.random.default_rng(seed)
    nn.clear_parameters()
    xs = [nn.Variable.from_numpy_array(rng.standard_normal(s).astype(np.float32)) for s in shapes]
    with nn.auto_forward(False):
        y = fn(*xs)
    for name, p in nn.get_parameters(grad_only=False).items():
        p.d = rng.standard_normal(p.shape) * 0.5 + (1.5 if name.endswith("var") else 0.0)
    funcs, _ = walk(y)
    return xs, y, funcs
