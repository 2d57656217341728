"""Evidence from a sweep: the runs of Hydra multiruns of ``nas-hw search`` (searches at several
latency weights and the random / uniform baselines) turned into the table, the plot and the
sentences of the claim, with medians, bootstrap intervals and a stated test.

``nas-hw sweep-report DIR ...`` (:mod:`nas_hw.app.sweep_report`) runs it:

* :mod:`~nas_hw.evidence.runs`: reading the runs and the commands that made them;
* :mod:`~nas_hw.evidence.remeasure`: every derived network re-timed side by side, interleaved;
* :mod:`~nas_hw.evidence.stats`: bootstrap intervals and the sign-flip test (numpy, seeded);
* :mod:`~nas_hw.evidence.analysis`: the medians, comparisons and verdicts;
* :mod:`~nas_hw.evidence.claims`, :mod:`~nas_hw.evidence.markdown`, :mod:`~nas_hw.evidence.plot`:
  the sentences, the document and the Pareto plot.
"""
from .analysis import analyse
from .runs import Run, load_runs, sweep_commands

__all__ = ["Run", "analyse", "load_runs", "sweep_commands"]
