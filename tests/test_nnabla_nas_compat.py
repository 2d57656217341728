"""The one door to nnabla_nas (nas_hw/nnabla_nas_compat.py): the OFA placeholder and MixedOp access."""
import os
import subprocess
import sys
import textwrap

import nnabla as nn
import numpy as np
import pytest

import nas_hw  # noqa: F401  (installs the placeholder)
from nas_hw import nnabla_nas_compat as nnas
from tests.conftest import REPO


def test_the_real_search_nets_and_the_runner_import_from_the_wheel():
    from nnabla_nas.contrib.classification import darts, fairnas, mobilenet, pnas, random_wired, zoph  # noqa: F401
    from nnabla_nas.runner import DartsSearcher, FairNasSearcher, ProxylessNasSearcher, Trainer  # noqa: F401
    assert nnas.ofa_networks_missing()
    assert nnas.OFA_NETWORKS in sys.modules


def test_ofa_fails_with_an_error_naming_the_missing_module():
    import nnabla_nas.contrib as contrib
    with pytest.raises(nnas.MissingOFAError, match=r"nnabla_nas\.contrib\.classification\.ofa\.networks"):
        contrib.ofa_mbv3.SearchNet
    assert issubclass(nnas.MissingOFAError, ImportError)


def test_nothing_is_registered_where_nnabla_nas_is_complete(tmp_path):
    """A complete nnabla_nas (here a fake one with the subpackage) gets no placeholder."""
    pkg = tmp_path / "nnabla_nas" / "contrib" / "classification" / "ofa" / "networks"
    pkg.mkdir(parents=True)
    for d in [tmp_path / "nnabla_nas", pkg.parent.parent.parent, pkg.parent.parent, pkg.parent, pkg]:
        (d / "__init__.py").write_text("")
    script = textwrap.dedent("""
        import sys
        sys.path.insert(0, sys.argv[1])
        from nas_hw import nnabla_nas_compat as c
        print(c.ofa_networks_missing(), c.install_ofa_placeholder(), c.OFA_NETWORKS in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                          cwd=REPO, timeout=120, env=dict(os.environ, PYTHONPATH=str(tmp_path)))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False", "False"]


def test_mixedop_access_prefers_the_public_api():
    from nnabla_nas.module import Identity, MixedOp, ReLU
    m = MixedOp([Identity(), ReLU()], mode="sample")
    assert nnas.is_mixed_op(m) and nnas.mode(m) == "sample" and nnas.active_index(m) is None
    m(nn.Variable((1, 2)))
    assert nnas.active_index(m) == m.active_index in (0, 1)
    with nnas.fixed_choices([m], [1]):
        assert nnas.active_index(m) == 1
        out = m(nn.Variable.from_numpy_array(np.array([[-1.0, 2.0]], dtype=np.float32)))
        out.forward()
        np.testing.assert_allclose(out.d, [[0.0, 2.0]])
    assert nnas.mode(m) == "sample"  # restored


def test_replace_mixed_ops_leaves_the_fixed_network_of_the_choices():
    from nnabla_nas.module import Conv, Identity, MixedOp, Module, Zero

    class Net(Module):
        def __init__(self):
            Module.__init__(self)
            self.a = MixedOp([Conv(2, 2, (1, 1)), Identity(), Zero()], mode="full")
            self.b = MixedOp([Identity(), Zero()], mode="full")

        def call(self, x):
            return self.b(self.a(x))

    net = Net()
    ops_a = list(net.a._ops)
    nnas.replace_mixed_ops(net, [0, 1])
    assert net.a is ops_a[0] and type(net.b).__name__ == "Zero"
    assert list(net.modules) == ["a", "b"]  # same places, same call order
    assert [k for k in net.get_parameters() if "alpha" in k] == []
    out = net(nn.Variable((1, 2, 3, 3)))
    assert out.shape == (1, 2, 3, 3)
    with pytest.raises(ValueError, match="one candidate index per MixedOp"):
        nnas.replace_mixed_ops(Net(), [0])
    with pytest.raises(ValueError, match="must index one of its 2 candidates"):
        nnas.replace_mixed_ops(Net(), [0, 2])


def test_hydra_run_dir_gives_nnabla_nas_its_output_path_and_leaves_nothing_behind(tmp_path):
    from hydra.core.hydra_config import HydraConfig
    from nnabla_nas.utils.helper import get_output_path

    previous = HydraConfig.instance().cfg  # another test's finished Hydra app may have left one
    with nnas.hydra_run_dir(tmp_path / "run"):
        assert get_output_path() == str(tmp_path / "run")
        with nnas.hydra_run_dir(tmp_path / "inner"):
            assert get_output_path() == str(tmp_path / "inner")
        assert get_output_path() == str(tmp_path / "run")
    assert HydraConfig.instance().cfg is previous
