"""Energy meters on fake counters (RAPL sysfs tree, NVML module) and on this machine."""
import os
import sys
from collections import OrderedDict

import nnabla as nn
import nnabla.parametric_functions as PF
import pytest

from nas_hw.errors import PowerUnavailableError
from nas_hw.estimators import power
from nas_hw.estimators.power import (DEFAULT_RAPL_ROOT, NvmlMeter, PowerEstimator, RaplMeter,
                                     make_meter, measure_energy)


@pytest.fixture(autouse=True)
def fresh_scope():
    with nn.parameter_scope("", OrderedDict()):
        yield


def write_zone(root, zone, name, energy_uj, max_uj=1_000_000):
    d = root / zone
    d.mkdir(parents=True, exist_ok=True)
    (d / "name").write_text(name + "\n")
    (d / "energy_uj").write_text(f"{energy_uj}\n")
    (d / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return d / "energy_uj"


@pytest.fixture
def rapl_tree(tmp_path):
    """Two packages, a core sub-zone and a psys zone (the last two must be ignored)."""
    pkg0 = write_zone(tmp_path, "intel-rapl:0", "package-0", 900_000)
    pkg1 = write_zone(tmp_path, "intel-rapl:1", "package-1", 10_000)
    core = write_zone(tmp_path, "intel-rapl:0:0", "core", 5)
    psys = write_zone(tmp_path, "intel-rapl:2", "psys", 7)
    return tmp_path, pkg0, pkg1, core, psys


class Workload:
    """A fake inference: each call adds energy to the counters and time to the clock."""

    def __init__(self, files, uj_per_call, s_per_call=0.25, max_uj=1_000_000):
        self.files, self.uj, self.dt, self.max_uj = files, uj_per_call, s_per_call, max_uj
        self.t = 0.0

    def clock(self):
        return self.t

    def __call__(self):
        self.t += self.dt
        for f in self.files:
            f.write_text(str((int(f.read_text()) + self.uj) % self.max_uj))


def test_rapl_reads_top_level_package_zones_only(rapl_tree):
    root, pkg0, pkg1, _, _ = rapl_tree
    meter = RaplMeter(root)
    assert [os.path.basename(z) for z in meter.zones] == ["intel-rapl:0", "intel-rapl:1"]
    assert sorted(meter.read().values()) == [10_000, 900_000]


def test_rapl_energy_and_power_with_counter_wrap_around(rapl_tree):
    root, pkg0, pkg1, core, psys = rapl_tree
    meter = RaplMeter(root)
    work = Workload([pkg0, pkg1, core, psys], uj_per_call=100_000)
    result = measure_energy(work, meter, n_run=4, n_warmup=0, min_duration_s=0, clock=work.clock)
    # package-0 goes 900000 -> 1300000 mod 1000000 = 300000: wrapped once, +400000 uJ
    assert int(pkg0.read_text()) == 300_000
    # package-1 goes 10000 -> 410000: +400000 uJ; together 800000 uJ = 800 mJ in 1.0 s
    assert result.n_inferences == 4
    assert result.duration_s == pytest.approx(1.0)
    assert result.energy_mj == pytest.approx(800.0)
    assert result.energy_per_inference_mj == pytest.approx(200.0)
    assert result.mean_power_w == pytest.approx(0.8)
    assert result.meter == "rapl"


def test_loop_runs_at_least_min_duration(rapl_tree):
    root, pkg0, pkg1, _, _ = rapl_tree
    work = Workload([pkg0, pkg1], uj_per_call=1_000, s_per_call=0.125)
    result = measure_energy(work, RaplMeter(root), n_run=2, n_warmup=3, min_duration_s=1.0,
                            clock=work.clock)
    assert result.n_inferences == 8             # 2 runs wanted, 1 s needed at 0.125 s each
    assert result.energy_mj == pytest.approx(8 * 2 * 1.0)   # 8 runs x 2 zones x 1000 uJ


def test_unchanged_counter_is_a_clear_error(rapl_tree):
    root = rapl_tree[0]
    work = Workload([], uj_per_call=0)
    with pytest.raises(PowerUnavailableError, match="rapl energy counter did not increase over 3 runs"):
        measure_energy(work, RaplMeter(root), n_run=3, n_warmup=0, min_duration_s=0,
                       clock=work.clock)


def test_power_estimator_on_a_frozen_fake_tree_reports_no_figure(rapl_tree):
    x = nn.Variable((1, 3, 8, 8))
    y = PF.convolution(x, 4, (3, 3), name="c")
    est = PowerEstimator(ext_name="cpu", n_run=2, n_warmup=0, min_duration_s=0,
                         rapl_root=str(rapl_tree[0]))
    with pytest.raises(PowerUnavailableError, match="did not increase"):
        est.get_estimation(y)


def test_missing_or_empty_or_unreadable_rapl_tree(tmp_path, monkeypatch):
    with pytest.raises(PowerUnavailableError, match=f"{tmp_path / 'nope'} does not exist"):
        RaplMeter(tmp_path / "nope")
    with pytest.raises(PowerUnavailableError, match="no intel-rapl:N zone with an energy_uj"):
        RaplMeter(tmp_path)
    counter = write_zone(tmp_path, "intel-rapl:0", "package-0", 1)

    def denied(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(power, "open", denied, raising=False)
    with pytest.raises(PowerUnavailableError, match="permission denied .*root only since Linux 5.10"):
        RaplMeter(tmp_path)
    monkeypatch.undo()
    counter.write_text("n/a\n")
    with pytest.raises(PowerUnavailableError, match="does not hold an integer"):
        RaplMeter(tmp_path)


def test_this_machines_cpu_meter():
    """Here (no powercap interface) the CPU estimator must refuse with the reason."""
    x = nn.Variable((1, 3, 8, 8))
    y = PF.convolution(x, 4, (3, 3), name="c")
    est = PowerEstimator(ext_name="cpu", n_run=2, n_warmup=0, min_duration_s=0.2)
    if not os.path.exists(DEFAULT_RAPL_ROOT):
        with pytest.raises(PowerUnavailableError,
                           match="no RAPL energy meter: /sys/class/powercap does not exist"):
            est.get_estimation(y)
        return
    try:  # a machine with powercap: either a real figure or a reason naming the path
        assert est.get_estimation(y) > 0
    except PowerUnavailableError as err:
        assert DEFAULT_RAPL_ROOT in str(err) or "did not increase" in str(err)


class FakeNvml:
    def __init__(self, energy_mj=5_000, supported=True):
        self.energy_mj, self.supported = energy_mj, supported

    def nvmlInit(self):
        pass

    def nvmlDeviceGetHandleByIndex(self, index):
        if index > 0:
            raise RuntimeError("Invalid Argument")
        return ("handle", index)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        if not self.supported:
            raise RuntimeError("Not Supported")
        return self.energy_mj


def test_nvml_meter_on_a_fake_nvml():
    nvml = FakeNvml()
    meter = NvmlMeter(0, nvml=nvml)
    t = [0.0]

    def work():
        nvml.energy_mj += 30      # 30 mJ per inference
        t[0] += 0.01

    result = measure_energy(work, meter, n_run=5, n_warmup=2, min_duration_s=0,
                            clock=lambda: t[0])
    assert result.meter == "nvml"
    assert result.energy_per_inference_mj == pytest.approx(30.0)
    assert result.mean_power_w == pytest.approx(3.0)   # 150 mJ over 0.05 s


def test_nvml_failures_name_the_reason(monkeypatch):
    with pytest.raises(PowerUnavailableError, match="needs Volta or newer"):
        NvmlMeter(0, nvml=FakeNvml(supported=False))
    with pytest.raises(PowerUnavailableError, match="NVML could not open device 1"):
        NvmlMeter(1, nvml=FakeNvml())
    monkeypatch.setitem(sys.modules, "pynvml", None)   # as if nvidia-ml-py were absent
    with pytest.raises(PowerUnavailableError, match=r"pynvml is not installed \(pip install nvidia-ml-py\)"):
        make_meter("cuda", 0)
    with pytest.raises(ValueError, match="ext_name must be one of"):
        PowerEstimator(ext_name="gpu")


def _cuda_available():
    try:
        import nnabla_ext.cuda  # noqa: F401
    except Exception:
        return False
    return True


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda_available(), reason="nnabla_ext.cuda cannot be imported here")
def test_gpu_energy_per_inference():
    from nas_hw.measure.device import get_context

    with nn.context_scope(get_context("cudnn", 0)):
        x = nn.Variable((16, 3, 64, 64))
        y = PF.convolution(x, 64, (3, 3), pad=(1, 1), name="c")
    result = PowerEstimator(ext_name="cudnn", n_run=20, min_duration_s=1.0).measure(y)
    assert result.meter == "nvml"
    assert result.energy_per_inference_mj > 0 and result.mean_power_w > 0
    assert result.energy_per_inference_mj == pytest.approx(result.energy_mj / result.n_inferences)
