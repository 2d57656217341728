"""Every derived network of a sweep timed again, here and now, side by side and interleaved.

Each run measured its network at its own time, under its own load (or not at all: jobs that read
a stored table measure nothing). On a shared machine those numbers are not comparable, so the
report step rebuilds every distinct derived network (from the run's ``.hydra/config.yaml`` and
its choices, as the search built it: the supernet of the run's ``space`` and its ``derive``),
and times them all in ``rounds`` rounds; each round times every network once (``n_run`` timed
forwards after ``n_warmup``), in a fresh seeded order, so a change of load during the step
falls on all networks alike. A network's latency is the median over rounds; its spread (the
interquartile range over rounds divided by the median) and the load average seen around every
round are kept.
"""
import datetime
import json
import logging
import os
import time

import numpy as np

from ..checks import check_int
from ..errors import UsageError

logger = logging.getLogger(__name__)


def _load_config(run):
    from omegaconf import OmegaConf

    path = os.path.join(run.run_dir, ".hydra", "config.yaml")
    if not os.path.isfile(path):
        raise UsageError(f"{path} is missing: cannot rebuild the network of run {run.name!r} "
                         "(give the multirun directories as Hydra wrote them)")
    return OmegaConf.load(path)


def _n_classes(run, cfg):
    n = run.get("n_classes")
    if n is not None:
        return int(n)
    from hydra.utils import instantiate

    return int(instantiate(cfg.data, _convert_="all").n_classes)  # reports written before n_classes


def build_networks(runs):
    """The output Variable of every distinct derived network of ``runs``, built in inference
    mode at its deployment shape: ``{architecture key: (output, device)}``."""
    import nnabla as nn
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from ..measure.device import Device

    supernets, built = {}, {}
    for run in runs:
        if run.architecture in built:
            continue
        cfg = _load_config(run)
        shape = tuple(int(s) for s in run.get("deploy_input_shape"))
        device_cfg = cfg.get("device") or {}
        device = Device(run.get("ext_name", "cpu"), int(device_cfg.get("device_id", 0)),
                        str(device_cfg.get("type_config", "float")))
        space = OmegaConf.to_container(cfg.space, resolve=True)
        key = json.dumps([space, shape[1], _n_classes(run, cfg), device.ext_name], sort_keys=True, default=str)
        with nn.context_scope(device.context):
            if key not in supernets:
                supernets[key] = instantiate(cfg.space, _convert_="all", mode="full", in_channels=shape[1],
                                             n_classes=_n_classes(run, cfg), seed=0)
            net = supernets[key].derive(list(run.get("choices")))
            net.apply(training=False)
            built[run.architecture] = (net(nn.Variable(shape)), device)
    return built


def profiler_timer(n_run, n_warmup):
    """A ``(output, device) -> ms`` timing with the whole-graph :class:`Profiler`."""
    import nnabla as nn

    from ..estimators.network import Profiler

    def time_ms(out, device):
        with nn.context_scope(device.context):
            profiler = Profiler(out, device_id=device.device_id, ext_name=device.ext_name, n_run=n_run,
                                n_warmup=n_warmup, per_function=False)
            return float(profiler.run()["forward_all"])
    return time_ms


def remeasure(runs, n_run=100, rounds=7, n_warmup=5, seed=0, timer=None, networks=None):
    """Times every distinct derived network of ``runs`` side by side, interleaved, and sets
    each run's ``remeasured_latency_ms``.

    Args:
        runs: :class:`~nas_hw.evidence.runs.Run` records.
        n_run: timed forwards per network per round (>= 1).
        rounds: interleaved rounds (>= 1).
        n_warmup: untimed forwards before each timing.
        seed: seeds the order of every round.
        timer: ``(output, device) -> ms`` (default: :func:`profiler_timer`); tests pass a fake.
        networks: ``{architecture: (output, device)}`` (default: :func:`build_networks`).

    Returns:
        dict: ``date`` (UTC), ``wall_s``, ``n_networks``, ``n_run``, ``rounds``, ``n_warmup``,
        ``load_avg`` (1-min load average before the first round and after every round),
        ``latency_ms`` and ``spread`` per architecture key.
    """
    n_run = check_int("n_run", n_run, low=1)
    rounds = check_int("rounds", rounds, low=1)
    n_warmup = check_int("n_warmup", n_warmup, low=0)
    networks = build_networks(runs) if networks is None else networks
    timer = profiler_timer(n_run, n_warmup) if timer is None else timer
    keys = sorted(networks)
    rng = np.random.default_rng(check_int("seed", seed, low=0))
    samples = {k: [] for k in keys}
    loads = [round(os.getloadavg()[0], 2)]
    started = time.perf_counter()
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    for r in range(rounds):
        for i in rng.permutation(len(keys)):
            out, device = networks[keys[i]]
            samples[keys[i]].append(float(timer(out, device)))
        loads.append(round(os.getloadavg()[0], 2))
        logger.info("re-measure round %d/%d: %d networks, load %.2f", r + 1, rounds, len(keys), loads[-1])
    latency = {k: float(np.median(v)) for k, v in samples.items()}
    spread = {k: float((np.percentile(v, 75) - np.percentile(v, 25)) / latency[k]) if latency[k] > 0 else None
              for k, v in samples.items()}
    for run in runs:
        run.remeasured_latency_ms = latency[run.architecture]
    return {"date": date, "wall_s": time.perf_counter() - started, "n_networks": len(keys), "n_run": n_run,
            "rounds": rounds, "n_warmup": n_warmup, "load_avg": loads, "latency_ms": latency, "spread": spread}
