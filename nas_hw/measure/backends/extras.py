"""The optional packages a backend needs, imported on first use with a message naming the extra."""
import importlib

from ...constants import ONNX_INSTALL_HINT
from ...errors import BackendUnavailableError


def _import(module):
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise BackendUnavailableError(f"the onnxruntime backend needs the {module!r} package ({err}); "
                                      f"{ONNX_INSTALL_HINT}") from err


def import_onnx():
    """The ``onnx`` package (with its ``helper`` and ``numpy_helper``), or
    :class:`BackendUnavailableError` naming the extra."""
    onnx = _import("onnx")
    _import("onnx.helper")
    _import("onnx.numpy_helper")
    return onnx


def import_onnxruntime():
    """The ``onnxruntime`` package, or :class:`BackendUnavailableError` naming the extra."""
    return _import("onnxruntime")


def onnx_available():
    """True when both ``onnx`` and ``onnxruntime`` import (the ``onnx`` extra is installed)."""
    try:
        import_onnx()
        import_onnxruntime()
    except BackendUnavailableError:
        return False
    return True
