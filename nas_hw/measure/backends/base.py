"""The measuring backend interface: where layers and whole networks are timed.

A backend turns a piece of an nnabla graph into something to time and says which pieces the
runtime executes as one:

- :attr:`MeasuringBackend.name` and :attr:`MeasuringBackend.fingerprint` (its ``key`` is what
  measurements are stored under, so rows of different backends, runtimes, execution
  providers or thread settings never mix);
- :meth:`~MeasuringBackend.units`: the graph's functions grouped into the units the runtime
  executes (nnabla: one function each; ONNX Runtime: its fused kernels);
- :meth:`~MeasuringBackend.prepare_functions`, :meth:`~MeasuringBackend.prepare_module`,
  :meth:`~MeasuringBackend.prepare_network`: a :class:`Prepared` callable running one unit, one
  module or the whole network, timed by the caller with nas_hw's one timing core;
- :meth:`~MeasuringBackend.sync`: waits for the device around every timed run.
"""
from dataclasses import dataclass, replace
from typing import Callable, Optional


@dataclass
class Prepared:
    """One thing to time, ready to run.

    Attributes:
        run: one forward pass (no arguments).
        noop: the runtime executes nothing for it (an identity, a constant folded away):
            its cost is exactly zero and it is stored flagged as such; ``run`` is ``None``.
        copies: how many copies of the unit one ``run`` executes side by side (a backend whose
            per-call cost is large against a small unit runs several, so that the call is paid
            once for all of them).
        share: the part of a run's time that is the unit's own work, in (0, 1]: a unit run
            alone may need work it never needs inside a network (ONNX Runtime converts its
            inputs and outputs to and from a blocked layout), measured by the backend.
        n_kernels: the compute kernels the runtime runs for one copy, where the backend can
            tell (else ``None``).

    :meth:`adjust` turns a run's statistics into one copy's own work (times ``share / copies``).
    """

    run: Optional[Callable[[], object]] = None
    noop: bool = False
    copies: int = 1
    share: float = 1.0
    n_kernels: Optional[int] = None

    def adjust(self, stats):
        """``stats`` (TimingStats, seconds, of one ``run``) as the statistics of one copy's own work."""
        if self.copies == 1 and self.share == 1.0:
            return stats
        k = self.share / self.copies
        return replace(stats, mean=stats.mean * k, median=stats.median * k, std=stats.std * k,
                       min=stats.min * k, value=None if stats.value is None else stats.value * k)


class MeasuringBackend:
    """Base of the measuring backends (see the module docstring for the contract)."""

    #: the backend's name, one of :data:`nas_hw.constants.BACKENDS`
    name = None
    #: every unit is one function, and :meth:`prepare_functions` takes every input of it
    #: (parameters included) as an input: estimators may sign and measure function by function
    single_function_units = False

    @property
    def fingerprint(self):
        """An object with ``key`` (str) and ``as_dict()``: what its measurements are stored under."""
        raise NotImplementedError

    @property
    def settings(self):
        """The backend's settings as a flat dict (recorded with every measurement)."""
        return {"backend": self.name}

    def sync(self):
        """Waits until the device has finished its queued work."""

    def units(self, funcs, inputs, outputs):
        """The functions ``funcs`` (topological order) of a graph reading ``inputs`` and returning
        ``outputs``, grouped into the units the runtime executes: a list of lists of indices
        into ``funcs``, each list in topological order, the lists ordered by first index."""
        return [[i] for i in range(len(funcs))]

    def prepare_functions(self, funcs, inputs, outputs, input_shapes):
        """A :class:`Prepared` running the functions ``funcs`` (one unit) on fresh inputs.

        Args:
            funcs: the unit's function nodes, in topological order.
            inputs: the variables the unit reads that another unit (or the graph's input)
                produces; every other variable they read and do not produce is a constant.
            outputs: the variables the unit hands on.
            input_shapes: the shapes of ``inputs`` to measure at (the batch axis set).
        """
        raise NotImplementedError

    def prepare_module(self, module, input_shapes):
        """A :class:`Prepared` running ``module.call`` (inference mode) on inputs of ``input_shapes``."""
        raise NotImplementedError

    def prepare_network(self, output, inputs=None):
        """A :class:`Prepared` running the whole graph ending in ``output``; ``inputs`` are its
        input Variables (default: every leaf that is not a registered parameter)."""
        raise NotImplementedError
