"""Human-readable big numbers (nas_hw/report/numbers.py)."""
import pytest

from nas_hw.report.numbers import binary_bytes, si


@pytest.mark.parametrize("value,unit,text", [
    (3637806568, "FLOPs", "3.64 GFLOPs"), (224, "", "224"), (0, "FLOPs", "0 FLOPs"), (999, "", "999"),
    (1000, "", "1.00 k"), (21544, "", "21.5 k"), (112640, "FLOPs", "113 kFLOPs"),
    (999700, "MACs", "1.00 MMACs"),  # rounds up into the next prefix
    (1.5e15, "FLOPs", "1.50 PFLOPs"), (2.5e18, "FLOPs", "2500 PFLOPs"), (-5000, "", "-5.00 k"),
    (0.5, "", "0.50"),
])
def test_si(value, unit, text):
    assert si(value, unit) == text


@pytest.mark.parametrize("n_bytes,text", [
    (40, "40 B"), (1023, "1023 B"), (1024, "1.00 KiB"), (21544, "21.0 KiB"), (1048575, "1.00 MiB"),
    (3637806568, "3.39 GiB"),
])
def test_binary_bytes(n_bytes, text):
    assert binary_bytes(n_bytes) == text


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "12", None, True])
def test_refuses_what_is_not_a_finite_number(bad):
    with pytest.raises(ValueError, match="finite number"):
        si(bad)
