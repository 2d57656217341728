"""The exceptions nas_hw raises. Every public failure is one of these (or a plain
``ValueError``/``TypeError`` for a bad argument), each with a message that names the problem."""


class NasHwError(Exception):
    """Base class of nas_hw's own errors."""


class ExtensionUnavailableError(NasHwError, RuntimeError):
    """The requested nnabla extension (``cuda``, ``cudnn``) is not installed or has no device."""


class MeasurementError(NasHwError, RuntimeError):
    """A layer or network could not be measured. Never turned into a number."""

    def __init__(self, message, layer=None, signature=None):
        super().__init__(message)
        self.layer = layer
        self.signature = signature


class CacheError(NasHwError, RuntimeError):
    """The latency cache file is unusable (not a cache, corrupt, wrong schema, unwritable)."""


class MissingMeasurementsError(NasHwError, LookupError):
    """An offline estimator (bound to another device's fingerprint) lacks cached measurements."""

    def __init__(self, message, missing=()):
        super().__init__(message)
        self.missing = list(missing)


class GraphNotBuiltError(NasHwError, ValueError):
    """A model's graph was never built, so its modules have no input shapes."""


class PowerUnavailableError(NasHwError, RuntimeError):
    """No energy meter is readable on this device; no figure is invented."""
