"""nnabla extension contexts, device synchronisation and the device fingerprint.

The fingerprint is what a cached measurement is keyed by: a measurement taken with
another backend, another chip, another nnabla or another thread setting is a
different measurement.
"""
import functools
import logging
import os
import platform
from dataclasses import asdict, dataclass

from ..checks import check_device_id, check_ext_name, check_type_config
from ..constants import CUDA_INSTALL_HINT
from ..errors import ExtensionUnavailableError

logger = logging.getLogger(__name__)


def extension_module(ext_name):
    """The nnabla extension module for ``ext_name`` (``nnabla_ext.cpu``, ``nnabla_ext.cuda``...).

    Raises:
        ValueError: ``ext_name`` is not a known extension.
        ExtensionUnavailableError: the extension is not installed here.
    """
    return _extension_module(check_ext_name(ext_name))


@functools.lru_cache(maxsize=None)
def _extension_module(ext_name):
    from nnabla.ext_utils import import_extension_module

    try:
        return import_extension_module(ext_name)
    except ImportError as err:
        raise ExtensionUnavailableError(
            f"nnabla extension {ext_name!r} is not installed ({err}); to use it, {CUDA_INSTALL_HINT}"
        ) from err


def get_context(ext_name="cpu", device_id=0, type_config="float"):
    """Builds the nnabla context for an extension, checking that it can be used.

    Args:
        ext_name: one of ``cpu``, ``cuda``, ``cudnn``.
        device_id: GPU index (ignored by ``cpu``).
        type_config: ``float``, ``half`` or ``mixed_half``.

    Returns:
        nnabla.Context

    Raises:
        ValueError: an argument is not one of the allowed values.
        ExtensionUnavailableError: the extension is missing or has no such device.
    """
    device_id = check_device_id(device_id)
    check_type_config(type_config)
    module = extension_module(ext_name)
    if ext_name != "cpu":
        count = module.get_device_count()
        if device_id >= count:
            raise ExtensionUnavailableError(
                f"{ext_name} device_id={device_id} does not exist: {count} CUDA device(s) visible"
            )
    from nnabla.ext_utils import get_extension_context

    return get_extension_context(ext_name, device_id=str(device_id), type_config=type_config)


def synchronize(ext_name="cpu", device_id=0):
    """Waits until the device has finished all queued work (a no-op on ``cpu``)."""
    extension_module(ext_name).synchronize(device_id=str(device_id))


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    name = platform.processor() or platform.machine()
    return name or "unknown-cpu"


def _gpu_name(device_id):
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(int(device_id))
        name = pynvml.nvmlDeviceGetName(handle)
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception as err:  # the fingerprint says it could not tell, visibly
        logger.warning("GPU name for device %s unknown (nvidia-ml-py: %s)", device_id, err)
        return f"unknown-gpu-{device_id}"


@dataclass(frozen=True)
class Fingerprint:
    """Everything that makes one device's measurements differ from another's."""

    backend: str
    device: str
    nnabla: str
    extension: str
    type_config: str
    threads: str

    @property
    def key(self):
        """A stable readable string, e.g. ``cpu|Intel(R) Xeon(R)|nnabla=1.39.0|...``."""
        return "|".join(
            [self.backend, self.device, f"nnabla={self.nnabla}", f"ext={self.extension}",
             self.type_config, f"threads={self.threads}"]
        )

    def as_dict(self):
        return asdict(self)

    def __str__(self):
        return self.key


def _threads():
    omp = os.environ.get("OMP_NUM_THREADS", "unset")
    return f"omp:{omp},cpus:{os.cpu_count()}"


def fingerprint(ext_name="cpu", device_id=0, type_config="float"):
    """The :class:`Fingerprint` of the device behind ``ext_name``/``device_id``.

    Stable within a process (computed once), different whenever the backend differs.

    Raises:
        ValueError: an argument is not one of the allowed values.
        ExtensionUnavailableError: the extension is not installed here.
    """
    check_ext_name(ext_name)
    check_type_config(type_config)
    return _fingerprint(ext_name, check_device_id(device_id), type_config)


@functools.lru_cache(maxsize=None)
def _fingerprint(ext_name, device_id, type_config):
    module = extension_module(ext_name)
    import nnabla

    device = _cpu_name() if ext_name == "cpu" else _gpu_name(check_device_id(device_id))
    return Fingerprint(
        backend=ext_name,
        device=device,
        nnabla=nnabla.__version__,
        extension=getattr(module, "__version__", "unknown"),
        type_config=type_config,
        threads=_threads(),
    )


@dataclass(frozen=True)
class Device:
    """One nnabla device: where layers and networks are measured.

    Everything that measures holds one: its context, its synchronisation and the
    fingerprint its measurements are stored under come from here, checked once.

    Raises:
        ValueError: an argument is not one of the allowed values.
        ExtensionUnavailableError: the extension is missing or has no such device.
    """

    ext_name: str = "cpu"
    device_id: int = 0
    type_config: str = "float"

    def __post_init__(self):
        check_ext_name(self.ext_name)
        object.__setattr__(self, "device_id", check_device_id(self.device_id))
        check_type_config(self.type_config)
        extension_module(self.ext_name)  # fail now when the extension is missing

    @property
    def context(self):
        """The nnabla context (checked: the device exists)."""
        return get_context(self.ext_name, self.device_id, self.type_config)

    def sync(self):
        """Waits for the device's queued work."""
        synchronize(self.ext_name, self.device_id)

    @property
    def fingerprint(self):
        """The :class:`Fingerprint` measurements on this device are stored under."""
        return fingerprint(self.ext_name, self.device_id, self.type_config)


def current_device():
    """The :class:`Device` of nnabla's current default context."""
    import nnabla as nn

    ctx = nn.get_current_context()
    ext = ctx.backend[0].split(":")[0]
    return Device(ext, int(ctx.device_id or 0), "half" if "half" in ctx.backend[0] else "float")
