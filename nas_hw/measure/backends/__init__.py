"""Measuring backends: where layers and whole networks are timed.

``nnabla`` (the default) times nnabla's own kernels; ``onnxruntime`` exports the graph to ONNX
and times it on ONNX Runtime (the ``onnx`` extra), unit by fused unit. Both follow
:class:`~.base.MeasuringBackend`; :func:`make_backend` builds one by name.
"""
from ...checks import check_one_of
from ...constants import BACKENDS
from .base import MeasuringBackend, Prepared


def make_backend(backend="nnabla", **options):
    """A backend by name (``nnabla`` or ``onnxruntime``) with its options, or ``backend`` itself
    when it already is one (then no option may be given).

    Options: ``nnabla``: ``ext_name``, ``device_id``, ``type_config``, ``device``;
    ``onnxruntime``: ``provider``, ``threads``, ``optimization``, ``device_id``, ``type_config``,
    ``seed``.

    Raises:
        ValueError: an unknown name or option.
        BackendUnavailableError: the backend's packages or its execution provider are missing.
    """
    if isinstance(backend, MeasuringBackend):
        if options:
            raise ValueError(f"backend is already built; options {sorted(options)} cannot apply to it")
        return backend
    check_one_of("backend", backend, BACKENDS)
    if backend == "nnabla":
        from .nnabla import NnablaBackend as cls
    else:
        from .onnxruntime import OrtBackend as cls
    import inspect

    allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"backend {backend!r} takes options {allowed}, got unknown {unknown}")
    return cls(**options)


__all__ = ["MeasuringBackend", "Prepared", "make_backend"]
