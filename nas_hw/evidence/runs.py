"""The runs of a sweep, read back from their directories.

A sweep is one or more Hydra multirun directories of ``nas-hw search`` (searches at several
``latency.weight`` values, the ``search=random`` and ``search=uniform`` baselines, any space
whose runs write ``report.json``). Every ``report.json`` under them (any depth) is one
:class:`Run`; the multirun's ``multirun.yaml`` gives the command that made it
(:func:`sweep_commands`). Nothing here measures or trains.
"""
import datetime
import glob
import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from typing import Optional

from ..errors import UsageError

logger = logging.getLogger(__name__)

REPORT_FILE = "report.json"
#: The methods a run can belong to.
SEARCH, RANDOM, UNIFORM = "search", "random", "uniform"
METHODS = (SEARCH, RANDOM, UNIFORM)


@dataclass
class Run:
    """One run's numbers (from its ``report.json``) and where it lies.

    Attributes:
        run_dir: the run's directory.
        name: the sweep directory's name and ``run_dir`` below it (``random/12``).
        method: ``search``, ``random`` or ``uniform``.
        setting: what the run's method was set to: ``darts latency.weight=0.3``,
            ``darts latency=none``, ``random``, ``uniform ir_k3_e3``.
        task: the data, the space, the deployment input shape and a digest of the data, space
            and retraining settings (``distorted_digits / MobileNetSpace / 1x1x12x12 / settings
            3f2a1c``): only runs of one task are compared.
        seed: the run's seed.
        weight: the latency weight of a search (0 for ``latency=none``, the accuracy-only search
            every weight is compared with), else ``None``.
        architecture: a key of the derived network (space, choices, shape): equal keys are the
            same network, timed once.
        report: the whole ``report.json``.
        remeasured_latency_ms: set by the interleaved re-measurement, else ``None``.
    """

    run_dir: str
    name: str
    method: str
    setting: str
    task: str
    seed: int
    weight: Optional[float]
    architecture: str
    report: dict = field(repr=False)
    remeasured_latency_ms: Optional[float] = None

    def get(self, key, default=None):
        """A field of ``report.json``."""
        return self.report.get(key, default)

    @property
    def test_acc(self):
        return self.report.get("test_acc")

    @property
    def valid_acc(self):
        return self.report.get("valid_acc")

    @property
    def candidate(self):
        """The uniform baseline's candidate, else ``None``."""
        return (self.report.get("baseline") or {}).get("candidate")


def _short_target(target):
    return str(target or "?").rsplit(".", 1)[-1]


def method_of(report):
    """``search``, ``random`` or ``uniform`` from a ``report.json``."""
    kind = (report.get("baseline") or {}).get("kind")
    if kind is None:
        return SEARCH
    if kind not in (RANDOM, UNIFORM):
        raise UsageError(f"report.json baseline.kind must be one of {(RANDOM, UNIFORM)}, got {kind!r}")
    return kind


def setting_of(report, method, weight):
    """The label of a run's setting (see :class:`Run`)."""
    if method == SEARCH:
        if report.get("latency_weight") is None:  # latency=none: the accuracy-only search, weight 0
            return f"{report.get('algorithm')} latency=none"
        return f"{report.get('algorithm')} latency.weight={weight:g}"
    if method == UNIFORM:
        return f"uniform {report['baseline'].get('candidate')}"
    return RANDOM


#: The config groups that make a task: runs compared with each other share all of them (the same
#: data and split, the same space, the same retraining).
TASK_GROUPS = ("data", "space", "retrain")


def run_config(run_dir):
    """The run's ``.hydra/config.yaml`` as plain data (``{}`` when it is missing)."""
    import yaml  # a dependency of omegaconf

    path = os.path.join(run_dir, ".hydra", "config.yaml")
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return yaml.safe_load(f) or {}


def _digest(value):
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:6]


def task_of(report, config=None):
    """The task label of a run: data / space / deployment shape / a digest of its data, space and
    retraining settings (:data:`TASK_GROUPS`, from ``.hydra/config.yaml``), so that runs of
    other settings are never compared with each other."""
    shape = "x".join(str(s) for s in report.get("deploy_input_shape") or [])
    digest = _digest({g: (config or {}).get(g) for g in TASK_GROUPS})
    return f"{report.get('data')} / {_short_target(report.get('space'))} / {shape} / settings {digest}"


def architecture_key(report, config=None):
    """A key of the derived network: the same space settings, choices and shape build the same
    network."""
    space = (config or {}).get("space") or report.get("space")
    return json.dumps([space, report.get("choices"), report.get("deploy_input_shape"),
                       report.get("ext_name", "cpu")], sort_keys=True, default=str)


def _finished(path, report):
    stamp = report.get("finished_utc")
    if stamp:
        return stamp
    when = datetime.datetime.fromtimestamp(os.path.getmtime(path), tz=datetime.timezone.utc)
    return when.strftime("%Y-%m-%d %H:%M UTC")


def load_runs(sweep_dirs):
    """Every run under ``sweep_dirs`` (any depth), sorted by task, method, setting and seed.

    Args:
        sweep_dirs: directories (multirun directories, or a folder holding several).

    Returns:
        list of :class:`Run`.

    Raises:
        UsageError: a directory that does not exist or holds no ``report.json``, or a
            ``report.json`` without the fields a sweep needs.
    """
    if isinstance(sweep_dirs, (str, os.PathLike)):
        sweep_dirs = [sweep_dirs]
    runs, seen = [], set()
    for sweep_dir in sweep_dirs:
        sweep_dir = os.fspath(sweep_dir)
        if not os.path.isdir(sweep_dir):
            raise UsageError(f"sweep directory {sweep_dir!r} does not exist")
        paths = sorted(glob.glob(os.path.join(glob.escape(sweep_dir), "**", REPORT_FILE), recursive=True))
        # a search's accuracy-only reference lives in <run>/reference/: it is not a sweep job
        paths = [p for p in paths if os.path.basename(os.path.dirname(p)) != "reference"]
        if not paths:
            raise UsageError(f"no {REPORT_FILE} under {sweep_dir!r}: give the multirun directories of "
                             "`nas-hw search -m ...`")
        for path in paths:
            real = os.path.realpath(path)
            if real in seen:
                continue
            seen.add(real)
            runs.append(_run(path, sweep_dir))
    runs.sort(key=lambda r: (r.task, METHODS.index(r.method), r.weight or 0.0, r.setting, r.seed,
                             _natural(r.name)))
    return runs


def _natural(name):
    """A sort key that puts ``random/10`` after ``random/9``."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", name)]


def _run(path, sweep_dir):
    try:
        with open(path) as f:
            report = json.load(f)
    except (OSError, ValueError) as err:
        raise UsageError(f"{path}: not a readable report.json ({err})") from None
    missing = [k for k in ("choices", "seed", "deploy_input_shape", "test_acc") if k not in report]
    if missing:
        raise UsageError(f"{path}: report.json lacks {missing}: not a run of `nas-hw search`")
    method = method_of(report)
    weight = None
    if method == SEARCH:
        weight = float(report.get("latency_weight") or 0.0)
    run_dir = os.path.dirname(path)
    report = dict(report, finished_utc=_finished(path, report))
    # named from the sweep directory's own name on: runs of several multiruns stay distinct
    name = os.path.join(os.path.basename(os.path.normpath(sweep_dir)), os.path.relpath(run_dir, sweep_dir))
    config = run_config(run_dir)
    return Run(run_dir=run_dir, name=os.path.normpath(name), method=method,
               setting=setting_of(report, method, weight), task=task_of(report, config), seed=int(report["seed"]),
               weight=weight, architecture=architecture_key(report, config), report=report)


def sweep_commands(sweep_dirs):
    """The command of every multirun under ``sweep_dirs``: ``multirun.yaml``'s task overrides.

    Returns:
        list of dict: ``dir``, ``command`` (``nas-hw search -m ...``), ``jobs`` (its runs'
        count is filled by the caller), in directory order.
    """
    import yaml  # a dependency of omegaconf

    if isinstance(sweep_dirs, (str, os.PathLike)):
        sweep_dirs = [sweep_dirs]
    out = []
    for sweep_dir in sweep_dirs:
        found = sorted(glob.glob(os.path.join(glob.escape(os.fspath(sweep_dir)), "**", "multirun.yaml"),
                                 recursive=True))
        for path in found:
            with open(path) as f:
                node = yaml.safe_load(f) or {}
            overrides = ((node.get("hydra") or {}).get("overrides") or {})
            task = [str(o) for o in overrides.get("task") or []]
            hydra = [str(o) for o in overrides.get("hydra") or []
                     if not str(o).startswith(("hydra.mode=", "hydra.sweep.dir="))]
            out.append({"dir": os.path.dirname(path),
                        "command": " ".join(["nas-hw search -m"] + [_quote(o) for o in task + hydra])})
    return out


def _quote(arg):
    """An override as a shell word (single-quoted when the shell would change it)."""
    if all(c.isalnum() or c in "._-=,/+~:@%" for c in arg):
        return arg
    return "'" + arg.replace("'", "'\"'\"'") + "'"
