"""nas_hw/measure/backends/__init__.py, base.py, extras.py and nnabla.py: the backend registry, the
message when the onnx extra is missing, and the nnabla backend (today's measuring paths)."""
import sys

import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import numpy as np
import pytest

from nas_hw.constants import BACKENDS
from nas_hw.errors import BackendUnavailableError
from nas_hw.measure.backends import MeasuringBackend, make_backend
from nas_hw.measure.backends.extras import import_onnxruntime, onnx_available
from nas_hw.measure.backends.nnabla import NnablaBackend
from nas_hw.measure.device import Device
from tests.measure.backends.onnx_util import build


def test_backend_names():
    assert BACKENDS == ("nnabla", "onnxruntime")
    assert isinstance(make_backend(), NnablaBackend)
    backend = NnablaBackend()
    assert make_backend(backend) is backend
    with pytest.raises(ValueError, match=r"backend must be one of \('nnabla', 'onnxruntime'\), got 'ort'"):
        make_backend("ort")
    with pytest.raises(ValueError, match="already built"):
        make_backend(backend, threads=2)
    with pytest.raises(ValueError, match=r"unknown \['threads'\]"):
        make_backend("nnabla", threads=2)


@pytest.mark.parametrize("module", ["onnxruntime", "onnx"])
def test_a_missing_extra_says_what_to_install(monkeypatch, module):
    monkeypatch.setitem(sys.modules, module, None)  # import now raises ImportError
    with pytest.raises(BackendUnavailableError, match=r"pip install 'nas_hw\[onnx\]'"):
        make_backend("onnxruntime")
    assert not onnx_available()
    if module == "onnxruntime":
        with pytest.raises(BackendUnavailableError, match="'onnxruntime' package"):
            import_onnxruntime()


def test_nnabla_backend_is_the_device():
    backend = NnablaBackend("cpu", 0)
    assert backend.fingerprint == Device("cpu", 0).fingerprint
    assert backend.settings == {"backend": "nnabla", "ext_name": "cpu", "device_id": 0, "type_config": "float"}
    backend.sync()
    assert isinstance(backend, MeasuringBackend)


def test_nnabla_units_are_single_functions():
    xs, y, funcs = build(lambda x: F.relu(PF.convolution(x, 4, (3, 3))), [(1, 3, 8, 8)])
    assert NnablaBackend().units(funcs, xs, [y]) == [[0], [1]]


def test_nnabla_unit_is_rebuilt_on_fresh_zeroed_inputs_at_the_shapes_given():
    xs, y, funcs = build(lambda x: F.add_scalar(F.relu(x), 1.0), [(1, 3, 8, 8)])
    unit = NnablaBackend().prepare_functions(funcs, xs, [y], [(4, 3, 8, 8)])
    assert unit.copies == 1 and not unit.noop and unit.n_kernels == 2
    unit.run()
    assert np.all(xs[0].d != 0)  # the graph's own input is left untouched


def test_nnabla_module_that_runs_nothing_is_a_noop():
    from nnabla_nas.module import Identity, ReLU

    assert NnablaBackend().prepare_module(Identity(), [(1, 3, 4, 4)]).noop
    relu = NnablaBackend().prepare_module(ReLU(), [(1, 3, 4, 4)])
    assert not relu.noop and relu.n_kernels == 1
    relu.run()


def test_nnabla_network_zero_fills_only_what_was_never_set():
    x = nn.Variable((1, 3, 8, 8))
    nn.clear_parameters()
    y = PF.convolution(x, 2, (3, 3))
    net = NnablaBackend().prepare_network(y)
    net.run()
    assert np.all(x.d == 0) and y.d.shape == (1, 2, 6, 6)
