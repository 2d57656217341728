import pytest

from nas_hw.constants import EXT_NAMES
from nas_hw.measure.device import Fingerprint, fingerprint, get_context, synchronize
from nas_hw.errors import ExtensionUnavailableError
from tests.conftest import cuda_available, requires_gpu


def test_cpu_context_and_sync():
    ctx = get_context("cpu", 0)
    assert ctx.backend[0].startswith("cpu")
    synchronize("cpu", 0)


@pytest.mark.parametrize("bad", ["gpu", "CUDA", "", None, 3])
def test_unknown_ext_name(bad):
    with pytest.raises(ValueError, match="ext_name must be one of"):
        get_context(bad)


@pytest.mark.parametrize("bad", [-1, "x", 1.5, None])
def test_bad_device_id(bad):
    with pytest.raises(ValueError, match="device_id"):
        get_context("cpu", bad)


@pytest.mark.skipif(cuda_available(), reason="the cuda extension is installed here")
@pytest.mark.parametrize("ext", ["cuda", "cudnn"])
def test_missing_extension_says_what_to_install(ext):
    with pytest.raises(ExtensionUnavailableError, match=r"pip install 'nas_hw\[cuda\]'"):
        get_context(ext, 0)


def test_fingerprint_stable_and_readable():
    a, b = fingerprint("cpu", 0), fingerprint("cpu", 0)
    assert a == b and a.key == b.key
    assert a.key.startswith("cpu|") and "nnabla=" in a.key
    assert set(a.as_dict()) == {"backend", "device", "nnabla", "extension", "type_config", "threads"}


def test_fingerprint_differs_with_backend():
    cpu = fingerprint("cpu", 0)
    other = Fingerprint(**{**cpu.as_dict(), "backend": "cudnn"})
    assert other.key != cpu.key
    assert fingerprint("cpu", 0, "half").key != cpu.key
    assert set(EXT_NAMES) == {"cpu", "cuda", "cudnn"}


@requires_gpu
def test_gpu_fingerprint_names_the_gpu():
    fp = fingerprint("cudnn", 0)
    assert fp.backend == "cudnn" and fp.key != fingerprint("cpu", 0).key
    synchronize("cudnn", 0)
