"""Energy per inference (mJ) and mean power (W), read from a hardware energy counter
before and after a timed loop of forward passes.

Meters:
    * ``cuda``/``cudnn``: NVML's total energy counter of the GPU
      (``nvmlDeviceGetTotalEnergyConsumption``, mJ since the driver loaded; Volta or newer),
      through ``pynvml`` (``pip install nvidia-ml-py``).
    * ``cpu``: Linux powercap RAPL counters
      (``<root>/intel-rapl:N/energy_uj``, wrapping at ``max_energy_range_uj``). The
      top-level zones (packages) are added up; their sub-zones (core, uncore, dram) and the
      ``psys`` platform zone are left out, as they overlap the package zones. Since Linux
      5.10 ``energy_uj`` is readable by root only.

Both meters see the whole chip: other processes running at the same time are counted too.
Where no meter exists or it cannot be read, :class:`~nas_hw.errors.PowerUnavailableError`
says why; no figure is ever invented.
"""
import logging
import os
import re
import time
from dataclasses import dataclass

import nnabla as nn

from ..checks import check_device_id, check_ext_name, check_int, check_number
from ..errors import MeasurementError, PowerUnavailableError
from ..measure.device import Device
from ..measure.graph import functions_of, init_unset_inputs, leaf_variables
from .base import Estimator

logger = logging.getLogger(__name__)

DEFAULT_RAPL_ROOT = "/sys/class/powercap"
_TOP_ZONE = re.compile(r"^intel-rapl:\d+$")


def _read_text(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except PermissionError as err:
        raise PowerUnavailableError(
            f"cannot read {path}: permission denied (RAPL energy counters are readable by "
            "root only since Linux 5.10; run as root or grant read access)") from err
    except OSError as err:
        raise PowerUnavailableError(f"cannot read {path}: {err.strerror or err}") from err


def _read_int(path):
    text = _read_text(path)
    try:
        return int(text)
    except ValueError:
        raise PowerUnavailableError(f"{path} does not hold an integer: {text[:40]!r}") from None


class RaplMeter:
    """CPU package energy from Linux powercap RAPL counters, in mJ.

    Args:
        root: the powercap sysfs directory (tests pass a fake tree).

    Raises:
        PowerUnavailableError: no RAPL zone under ``root``, or a counter is unreadable.
    """

    name = "rapl"

    def __init__(self, root=DEFAULT_RAPL_ROOT):
        self.root = str(root)
        if not os.path.isdir(self.root):
            raise PowerUnavailableError(
                f"no RAPL energy meter: {self.root} does not exist (no Linux powercap "
                "interface here, e.g. a virtual machine or a non-Intel/AMD CPU)")
        zones = []
        for entry in sorted(os.listdir(self.root)):
            path = os.path.join(self.root, entry)
            if not _TOP_ZONE.match(entry) or not os.path.isfile(os.path.join(path, "energy_uj")):
                continue
            name_file = os.path.join(path, "name")
            zone_name = _read_text(name_file) if os.path.isfile(name_file) else entry
            if zone_name == "psys":
                continue
            zones.append(path)
        if not zones:
            raise PowerUnavailableError(
                f"no RAPL energy meter: no intel-rapl:N zone with an energy_uj counter under "
                f"{self.root}")
        self.zones = zones
        self.max_range_uj = {z: _read_int(os.path.join(z, "max_energy_range_uj")) for z in zones}
        self.read()  # fail now, not after the loop, when a counter cannot be read

    def read(self):
        """The counters now: ``{zone path: energy in uJ}``."""
        return {z: _read_int(os.path.join(z, "energy_uj")) for z in self.zones}

    def energy_mj(self, before, after):
        """Energy between two :meth:`read` results in mJ, allowing each counter one wrap."""
        total_uj = 0
        for z in self.zones:
            delta = after[z] - before[z]
            if delta < 0:  # the counter passed max_energy_range_uj and restarted from 0
                delta += self.max_range_uj[z]
            total_uj += delta
        return total_uj / 1000.0


class NvmlMeter:
    """GPU energy from NVML's total energy counter, in mJ.

    Args:
        device_id: GPU index.
        nvml: the ``pynvml`` module (imported when ``None``; tests may pass a fake one).

    Raises:
        PowerUnavailableError: pynvml missing, NVML failing, or the GPU has no energy counter.
    """

    name = "nvml"

    def __init__(self, device_id=0, nvml=None):
        if nvml is None:
            try:
                import pynvml as nvml
            except ImportError as err:
                raise PowerUnavailableError(
                    "no GPU energy meter: pynvml is not installed (pip install nvidia-ml-py)"
                ) from err
        self.nvml = nvml
        self.device_id = check_device_id(device_id)
        try:
            nvml.nvmlInit()
            self.handle = nvml.nvmlDeviceGetHandleByIndex(self.device_id)
        except Exception as err:
            raise PowerUnavailableError(
                f"no GPU energy meter: NVML could not open device {self.device_id}: {err}") from err
        self.read()

    def read(self):
        """Energy counter now, in mJ (an int)."""
        try:
            return int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))
        except Exception as err:
            raise PowerUnavailableError(
                f"GPU {self.device_id} has no readable energy counter "
                f"(nvmlDeviceGetTotalEnergyConsumption needs Volta or newer): {err}") from err

    def energy_mj(self, before, after):
        """Energy between two :meth:`read` results in mJ."""
        return float(after - before)


def make_meter(ext_name="cpu", device_id=0, rapl_root=DEFAULT_RAPL_ROOT):
    """The meter for ``ext_name``: :class:`RaplMeter` on ``cpu``, :class:`NvmlMeter` on GPUs."""
    check_ext_name(ext_name)
    if ext_name == "cpu":
        return RaplMeter(rapl_root)
    return NvmlMeter(device_id)


@dataclass(frozen=True)
class EnergyResult:
    """Energy of a timed loop of inferences.

    Attributes:
        energy_per_inference_mj: energy of one forward call (one batch), mJ.
        mean_power_w: mean power over the loop, W.
        n_inferences: forward calls in the timed loop.
        duration_s: wall time of the loop, s.
        energy_mj: energy of the whole loop, mJ.
        meter: ``'rapl'`` or ``'nvml'``.
    """

    energy_per_inference_mj: float
    mean_power_w: float
    n_inferences: int
    duration_s: float
    energy_mj: float
    meter: str


def check_energy_settings(n_run=100, n_warmup=10, min_duration_s=1.0):
    """Raises ``ValueError`` naming the first setting of an energy measurement out of range."""
    check_int("n_run", n_run, low=1)
    check_int("n_warmup", n_warmup, low=0)
    check_number("min_duration_s", min_duration_s, low=0)


def measure_energy(fn, meter, n_run=100, n_warmup=10, min_duration_s=1.0, sync=None,
                   clock=time.perf_counter):
    """Runs ``fn`` at least ``n_run`` times and for at least ``min_duration_s`` between two
    readings of ``meter`` (counters update every few ms to 100 ms: keep the loop long).

    Raises:
        ValueError: a setting out of range.
        PowerUnavailableError: the meter's counter did not move over the loop.
        MeasurementError: ``fn`` raised.
    """
    check_energy_settings(n_run, n_warmup, min_duration_s)
    sync = sync or (lambda: None)
    try:
        for _ in range(n_warmup):
            fn()
        sync()
        before = meter.read()
        start = clock()
        n = 0
        while n < n_run or clock() - start < min_duration_s:
            fn()
            n += 1
        sync()
        duration = clock() - start
        after = meter.read()
    except PowerUnavailableError:
        raise
    except Exception as err:
        raise MeasurementError(f"the measured call raised {type(err).__name__}: {err}") from err
    if duration <= 0:
        raise MeasurementError(f"the timed loop of {n} runs measured {duration} s")
    energy = meter.energy_mj(before, after)
    if energy <= 0:
        raise PowerUnavailableError(
            f"the {meter.name} energy counter did not increase over {n} runs in "
            f"{duration:.3g} s (read {before!r} then {after!r}): the meter is not updating; "
            "no energy figure reported")
    return EnergyResult(energy_per_inference_mj=energy / n,
                        mean_power_w=energy / 1000.0 / duration,
                        n_inferences=n, duration_s=duration, energy_mj=energy, meter=meter.name)


class PowerEstimator(Estimator):
    """Energy per inference (mJ) of a graph's forward pass on ``ext_name``'s device.

    The graph must have been built in that device's context. ``get_estimation(graph)``
    returns mJ per forward call; :meth:`measure` returns the full :class:`EnergyResult`
    (mean power in W included).
    """

    unit = "mJ"

    def __init__(self, ext_name="cpu", device_id=0, n_run=100, n_warmup=10, min_duration_s=1.0,
                 rapl_root=DEFAULT_RAPL_ROOT):
        check_ext_name(ext_name)
        self.ext_name = ext_name
        self.device_id = check_device_id(device_id)
        check_energy_settings(n_run, n_warmup, min_duration_s)
        self.n_run, self.n_warmup, self.min_duration_s = n_run, n_warmup, min_duration_s
        self.rapl_root = rapl_root

    def meter(self):
        """A fresh meter for this device (raises PowerUnavailableError when there is none)."""
        return make_meter(self.ext_name, self.device_id, self.rapl_root)

    def measure(self, graph):
        """Times forwards of ``graph`` (its output Variable) between two meter readings."""
        if not isinstance(graph, nn.Variable):
            raise TypeError(f"graph must be an nnabla.Variable, got {type(graph).__name__}")
        meter = self.meter()
        device = Device(self.ext_name, self.device_id)
        init_unset_inputs(leaf_variables(functions_of(graph)))
        return measure_energy(lambda: graph.forward(clear_no_need_grad=True), meter,
                              n_run=self.n_run, n_warmup=self.n_warmup,
                              min_duration_s=self.min_duration_s, sync=device.sync)

    def get_estimation(self, graph):
        """Energy per inference (one forward call) in mJ."""
        return self.measure(graph).energy_per_inference_mj
