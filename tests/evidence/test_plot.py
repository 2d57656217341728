"""Tests of nas_hw.evidence.plot: identical points are spread and counted, the plot is drawn."""
import pytest

from nas_hw.evidence.analysis import analyse
from nas_hw.evidence.plot import plot, spread_identical
from nas_hw.evidence.runs import load_runs
from tests.evidence.fake_sweep import make_sweep


def test_identical_points_are_spread_symmetrically_and_counted():
    offsets, sizes = spread_identical([(1.0, 90.0), (2.0, 80.0), (1.0, 90.0), (1.0, 90.0)], step=0.1)
    assert list(sizes) == [3, 1, 3, 3]
    assert sorted(offsets[[0, 2, 3]]) == pytest.approx([-0.1, 0.0, 0.1]) and offsets[1] == 0


def test_the_plot_is_written(tmp_path):
    runs = load_runs(make_sweep(str(tmp_path)))
    path = tmp_path / "p.png"
    plot(runs, analyse(runs, n_boot=200), str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
