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


def backend_from_settings(settings):
    """The backend a table or report saved as ``settings`` (a backend's ``settings`` dict, or a
    bare name): ``"nnabla"`` stays a name (the estimator's device decides), anything else is
    built again with the options it was saved with.

    Raises:
        ValueError: ``settings`` names no backend.
        BackendUnavailableError: the backend cannot be built here.
    """
    if isinstance(settings, str):
        name, options = settings, {}
    elif isinstance(settings, dict) and "backend" in settings:
        name, options = settings["backend"], {k: v for k, v in settings.items() if k != "backend"}
    else:
        raise ValueError(f"backend settings must be a backend name or a dict with a 'backend' key, got {settings!r}")
    check_one_of("backend", name, BACKENDS)
    if name == "nnabla":
        return name
    from .onnxruntime import OrtBackend
    import inspect

    allowed = set(inspect.signature(OrtBackend.__init__).parameters) - {"self"}
    return make_backend(name, **{k: v for k, v in options.items() if k in allowed})


__all__ = ["MeasuringBackend", "Prepared", "backend_from_settings", "make_backend"]
