"""The network-based Profiler, with the seed's snippet."""
import nnabla as nn
import nnabla.functions as F
import nnabla.parametric_functions as PF
import nnabla.solvers as S
import numpy as np
import pytest

from nas_hw import Profiler


def small_net(batch=1):
    x = nn.Variable((batch, 3, 16, 16))
    with nn.parameter_scope("net"):
        h = F.relu(PF.convolution(x, 8, (3, 3), pad=(1, 1), name="conv"))
        y = PF.affine(h, 10, name="fc")
    return x, y


def test_seed_profiler_snippet_gives_positive_float():
    nn.clear_parameters()
    _, out2 = small_net()
    outlier, max_measure_execution_time, time_scale, n_warmup, n_runs = 0.05, 500, "m", 2, 10
    device_id, ext_name = 0, "cpu"
    network_based_estim = Profiler(out2, device_id=device_id, ext_name=ext_name, outlier=outlier,
                                   time_scale=time_scale, n_warmup=n_warmup,
                                   max_measure_execution_time=max_measure_execution_time, n_run=n_runs)
    network_based_estim.run()
    net_based_latency = float(network_based_estim.result["forward_all"])
    assert isinstance(network_based_estim.result["forward_all"], float)
    assert net_based_latency > 0
    names = [s.function_name for s in network_based_estim.result["forward"]]
    assert names == ["Convolution", "ReLU", "Affine"]
    assert all(s.mean_time > 0 and s.n_run >= 1 for s in network_based_estim.result["forward"])


def test_inputs_initialised_and_user_data_kept():
    nn.clear_parameters()
    x = nn.Variable((2, 5))
    t = nn.Variable((2, 1))  # labels never set: zero-filled, never garbage indices
    loss = F.mean(F.softmax_cross_entropy(PF.affine(x, 5), t))
    x.d = np.full((2, 5), 3.0)
    Profiler(loss, 0, "cpu", n_run=3, n_warmup=1).run()
    assert np.all(x.d == 3.0)
    assert np.all(t.d == 0)
    assert np.isfinite(loss.d).all()


def test_solver_times_training():
    nn.clear_parameters()
    _, y = small_net()
    loss = F.mean(y)
    solver = S.Sgd(0.01)
    solver.set_parameters(nn.get_parameters())
    r = Profiler(loss, 0, "cpu", solver=solver, n_run=3, n_warmup=1, per_function=False).run()
    assert r["backward_all"] > 0 and r["training"] > 0 and "forward" not in r


def test_time_scale_units_agree():
    nn.clear_parameters()
    _, y = small_net()
    p = Profiler(y, 0, "cpu", n_run=3, n_warmup=0, time_scale="u", per_function=False)
    p.run()
    st = p.result["forward_all_stats"]
    assert p.result["forward_all"] == pytest.approx(st.value * 1e6)  # the robust statistic, not the mean
    assert st.value == st.robust and st.n_rounds >= 1 and p.result["disturbed"] in ([], ["forward_all"])


@pytest.mark.parametrize("kwargs, field", [
    ({"time_scale": "s"}, "time_scale"), ({"outlier": 0.7}, "outlier"), ({"n_run": 0}, "n_run"),
    ({"ext_name": "opencl"}, "ext_name"),
])
def test_invalid_arguments(kwargs, field):
    nn.clear_parameters()
    _, y = small_net()
    args = {"graph": y, "device_id": 0, "ext_name": "cpu"}
    args.update(kwargs)
    with pytest.raises(ValueError, match=field):
        Profiler(**args)


def test_graph_must_be_a_variable():
    with pytest.raises(TypeError, match="nnabla.Variable"):
        Profiler("not a graph", 0, "cpu")
