"""The derived architecture: its fixed network's measured latency and its description."""
import nnabla as nn

from ..estimators.flops import count_flops
from ..estimators.network import Profiler
from ..estimators.params import parameter_bytes


def measure_network_latency_ms(net, input_shape, ext_name="cpu", device_id=0, n_run=20,
                               n_warmup=3, backend="nnabla"):
    """Measured latency (ms) of a fixed network at ``input_shape``, in inference mode.

    Args:
        net: an nnabla_nas ``Module`` without choices.
        input_shape: (N, C, H, W).
        ext_name, device_id: where to run.
        n_run, n_warmup: profiler settings.
        backend: the measuring backend (a name or a backend: the table's, so that the derived
            network is measured where its estimate was).

    Returns:
        float: the forward time in ms (the Profiler's ``forward_all``: the timing core's robust
        statistic, as every nas_hw latency).
    """
    net.apply(training=False)
    out = net(nn.Variable(tuple(input_shape)))
    profiler = Profiler(out, device_id=device_id, ext_name=ext_name, n_run=n_run,
                        n_warmup=n_warmup, per_function=False, backend=backend)
    return float(profiler.run()["forward_all"])


def describe_architecture(table, net, choices, input_shape):
    """A JSON-ready description of an architecture.

    Args:
        table: the :class:`~nas_hw.nas.table.CandidateTable` (estimated latency).
        net: the derived fixed network of ``choices`` (not built yet).
        choices: one candidate index per choice group.
        input_shape: the deployment input shape (FLOPs are counted there).

    Returns:
        dict: ``choices``, ``candidates`` (names, when the space names them),
        ``latency_ms`` (table estimate), ``param_bytes``, ``flops`` and ``macs`` (``None``
        with ``flops_unknown`` listing the functions without a formula, if any).
    """
    names = net.choice_names(choices) if hasattr(net, "choice_names") else None
    net.apply(training=False)
    out = net(nn.Variable(tuple(input_shape)))
    flops = count_flops(out, on_unknown="list")
    return {
        "choices": [int(c) for c in choices],
        "candidates": names,
        "latency_ms": table.for_choices(list(choices), unit="m"),
        "param_bytes": int(parameter_bytes(net)),
        "flops": int(flops.flops) if flops.complete else None,
        "macs": int(flops.macs) if flops.complete else None,
        "flops_unknown": sorted(set(flops.unknown)),
        "input_shape": [int(s) for s in input_shape],
    }
