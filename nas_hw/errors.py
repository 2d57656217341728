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


class NetworkInputError(NasHwError, ValueError):
    """A network to report on (an ``.nnp`` file, ``module:function``) or one of its options cannot
    be turned into an nnabla graph."""


class DependencyMissingError(NasHwError, RuntimeError):
    """An optional dependency needed by the requested output is not installed."""


class ConfigInputError(NasHwError, ValueError):
    """A configuration (its directory, an override or a value) is unusable."""


class DatasetError(NasHwError, ValueError):
    """A dataset file exists but its content is not what the reader expects."""


class UsageError(NasHwError, ValueError):
    """A command-line argument or input file the user has to change (exit code 2)."""


class FileWriteError(NasHwError, OSError):
    """A file nas_hw writes (an export, a report, a checkpoint, a new cache) could not be written,
    or its destination is something nas_hw must not write through (a symbolic link, a directory).
    Nothing is left behind: no temporary file, no partial destination."""
