"""nnabla_nas's own SearchNets as nas_hw search spaces (``space=nnabla_nas/darts`` ...).

:class:`SearchNetSpace` wraps a real SearchNet (``nnabla_nas.contrib.classification.darts.SearchNet``,
``mobilenet.SearchNet``, ``fairnas.SearchNet``, or any Module with MixedOps) into what nas_hw's
search needs, without assuming anything of its constructor:

* it builds the SearchNet with the data's channels, the number of classes and the seed, each
  passed under the name the SearchNet's constructor has for it (``num_classes``,
  ``in_channels``...), and only when it has one (MobileNet's stem always reads 3 channels), then
  sets its MixedOps' mode;
* it says which images the SearchNet needs (:meth:`SearchNetSpace.input_shape_for`: 3 channels
  for MobileNet / FairNAS, 32x32 for DARTS, whose classifier pools an 8x8 map after two
  reductions); ``nas-hw search`` adapts the data to it
  (:func:`nas_hw.search.datasets.adapt_images`), so every latency is measured at that shape;
* it derives by the space's own rule (``rule``: ``darts`` for DARTS, ``argmax`` for
  MobileNet / ProxylessNAS, FairNAS and PNAS) and builds the derived network as nnabla_nas's
  TrainNets do: a fresh SearchNet with every MixedOp replaced by its chosen candidate
  (:func:`nas_hw.nnabla_nas_compat.replace_mixed_ops`). That network is exactly the candidate
  table's sum: the fixed part plus the chosen candidates (a DARTS edge that chose ``Zero`` stays a
  ``Zero`` module, whose cost the table holds).

Spaces without MixedOps cannot be searched by nas_hw (the table, the penalty and the searchers
read MixedOps): zoph (its choices are static-graph ``Join`` modules), random_wired (a fixed random
graph, no choice) and OFA (elastic layers; missing from the nnabla-nas 0.15.0 wheel).
"""
import functools
import inspect

import nnabla as nn
from nnabla_nas.module import Module

from ... import nnabla_nas_compat as nnas
from ...checks import check_int, check_one_of
from ...constants import DERIVATION_RULES, MIXED_OP_MODES
from ...nas.choices import arch_parameters, find_choice_points, net_parameters, per_point, set_mode

#: nas_hw's run arguments and the constructor names a SearchNet may have for each.
ARGUMENT_NAMES = {"in_channels": ("in_channels",), "n_classes": ("num_classes", "n_classes"), "seed": ("seed",)}


def _parameters_of(factory):
    target = factory.func if isinstance(factory, functools.partial) else factory
    try:
        return inspect.signature(target).parameters
    except (TypeError, ValueError):
        return {}


def searchnet_arguments(factory, **values):
    """The keyword arguments ``factory`` (a SearchNet class, or a ``functools.partial`` of one)
    takes for nas_hw's ``in_channels``, ``n_classes`` and ``seed``, under its own names (the
    MixedOps' mode is set on the MixedOps themselves: a SearchNet's ``mode`` argument may mean
    something else, as zoph's ``Join`` modes).

    Raises:
        ValueError: the partial already sets one of them (nas_hw sets it from the data and the run).
    """
    params = _parameters_of(factory)
    given = set(getattr(factory, "keywords", {}) or {})
    out = {}
    for ours, names in ARGUMENT_NAMES.items():
        name = next((n for n in names if n in params), None)
        if name is None:
            continue
        if name in given:
            raise ValueError(f"net.{name} is set by nas_hw ({ours}, from the data and the run): remove it from "
                             "the space's config")
        out[name] = values[ours]
    return out


def _name_of(factory):
    target = factory.func if isinstance(factory, functools.partial) else factory
    return f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', repr(target))}".lstrip(".")


class SearchNetSpace(Module):
    """A real nnabla_nas SearchNet as a nas_hw search space (see the module docstring).

    Args:
        net: builds the SearchNet: its class, or a ``functools.partial`` with its own settings
            (Hydra: a ``_partial_: true`` node under ``space.net``).
        rule: how an architecture is derived, ``'argmax'`` or ``'darts'``.
        image_channels: channels the SearchNet's stem reads when its constructor takes no
            ``in_channels`` (3 for nnabla_nas's MobileNet and FairNAS); ``None``: the data's.
        image_size: the height and width the SearchNet needs (32 for DARTS with 2 or more cells);
            ``None``: the data's.
        in_channels, n_classes, seed: the data's channels and classes and the seed, passed to
            ``net`` under its own argument names where it has them.
        mode: the MixedOps' mode (``full``, ``sample``, ``max``, ``fair``).
        choices: one candidate index per choice group: builds the derived fixed network.

    Raises:
        ValueError: a bad setting, or a SearchNet without MixedOps (nothing to search).
    """

    def __init__(self, net, rule="argmax", image_channels=None, image_size=None, in_channels=1, n_classes=10,
                 mode="full", seed=0, choices=None):
        Module.__init__(self)
        if not callable(net):
            raise ValueError(f"net must build the SearchNet (its class or a partial of it), got {net!r}")
        rule = check_one_of("rule", rule, DERIVATION_RULES)
        check_int("image_channels", image_channels, low=1, allow_none=True)
        check_int("image_size", image_size, low=1, allow_none=True)
        check_int("in_channels", in_channels, low=1)
        check_int("n_classes", n_classes, low=1)
        check_one_of("mode", mode, MIXED_OP_MODES)
        check_int("seed", seed, low=0)
        kwargs = searchnet_arguments(net, in_channels=image_channels or in_channels, n_classes=n_classes,
                                     seed=seed)
        if "in_channels" not in kwargs and image_channels is None:
            raise ValueError(f"image_channels is required: {_name_of(net)} takes no in_channels, so give the "
                             "channels its stem reads (3 for nnabla_nas's classification SearchNets)")
        self._settings = dict(net=net, rule=rule, image_channels=image_channels, image_size=image_size,
                              in_channels=in_channels, n_classes=n_classes, mode=mode, seed=seed)
        self.derivation_rule = rule
        self.net = net(**kwargs)
        points = find_choice_points(self.net, require_shapes=False)
        if not points:
            raise ValueError(f"{_name_of(net)} has no MixedOp: nas_hw searches MixedOps only (zoph's static Join, "
                             "random_wired's fixed graph and OFA's elastic layers are not supported)")
        set_mode(self.net, mode)
        self._groups = _groups(self.net, points)
        self._channels = image_channels or in_channels
        self._choices = None
        if choices is not None:
            self._choices = self._check_choices(choices)
            nnas.replace_mixed_ops(self.net, per_point(points, self._choices))

    # -- what nas_hw's search reads ------------------------------------------------------------
    @property
    def space_name(self):
        """The wrapped SearchNet's class, e.g. ``nnabla_nas.contrib.classification.darts.network.SearchNet``."""
        return _name_of(self._settings["net"])

    @property
    def searchnet(self):
        """The wrapped nnabla_nas SearchNet (or, when derived, its fixed network)."""
        return self.net

    def input_shape_for(self, data_shape):
        """The image shape ``(C, H, W)`` the SearchNet needs, given the data's ``(C, H, W)``."""
        size = self._settings["image_size"]
        return (self._channels, size or int(data_shape[1]), size or int(data_shape[2]))

    def call(self, input):
        if len(input.shape) != 4 or input.shape[1] != self._channels:
            raise ValueError(f"input must have shape (B, {self._channels}, H, W), got {tuple(input.shape)}")
        return self.net(input)

    def check_input(self, input_shape):
        """Builds the graph once at ``input_shape`` (N, C, H, W): a shape the SearchNet cannot take
        fails here, in one line, and not in the middle of a search.

        Raises:
            ValueError: the SearchNet refused the shape (nnabla's message, one line).
        """
        try:
            with nn.auto_forward(False):
                self(nn.Variable(tuple(int(d) for d in input_shape), need_grad=False))
        except (RuntimeError, ValueError, AssertionError) as err:
            reason = " ".join(str(err).split())[:300]
            raise ValueError(f"image_size: {_name_of(self._settings['net'])} cannot take inputs of shape "
                             f"{list(input_shape)} ({type(err).__name__}: {reason}); DARTS needs 32x32 "
                             "(16x16 with one cell)") from err

    @property
    def n_choice_groups(self):
        """Number of choice groups (the length of ``choices``)."""
        return len(self._groups)

    @property
    def choice_group_names(self):
        """One name per choice group: the path of its first MixedOp in the SearchNet."""
        return [g for g, _ in self._groups]

    @property
    def candidate_names_per_group(self):
        """The candidate names of each choice group (nnabla_nas's names where it has them)."""
        return [list(names) for _, names in self._groups]

    @property
    def choices(self):
        """The derived network's choices (``None`` for the search network)."""
        return None if self._choices is None else list(self._choices)

    @property
    def is_derived(self):
        return self._choices is not None

    def choice_names(self, choices=None):
        """The chosen candidate's name in every group (default: this derived network's)."""
        if choices is None:
            if self._choices is None:
                raise ValueError("this is a search network: pass choices explicitly")
            choices = self._choices
        choices = self._check_choices(choices)
        return [names[c] for c, (_, names) in zip(choices, self._groups)]

    def derive(self, choices):
        """The fixed network of ``choices`` (one candidate index per group): a fresh SearchNet
        (new weights) whose MixedOps are replaced by the chosen candidates."""
        return type(self)(**dict(self._settings, choices=list(self._check_choices(choices))))

    def get_arch_parameters(self, grad_only=False):
        """The architecture parameters, one per choice group (nnabla_nas's vocabulary)."""
        return arch_parameters(self) if not self.is_derived else {}

    def get_net_parameters(self, grad_only=False):
        """Every parameter but the architecture parameters."""
        return net_parameters(self, grad_only=grad_only)

    def _check_choices(self, choices):
        if isinstance(choices, (str, bytes)) or not hasattr(choices, "__iter__"):
            raise ValueError(f"choices must be a list of ints (one per choice group), got {choices!r}")
        choices = list(choices)
        if len(choices) != len(self._groups):
            raise ValueError(f"choices must hold one index per choice group ({len(self._groups)}), "
                             f"got {len(choices)}")
        for c, (group, names) in zip(choices, self._groups):
            check_int(f"choice of {group!r}", c, low=0, high=len(names) - 1)
        return tuple(int(c) for c in choices)

    def extra_repr(self):
        return (f"net={_name_of(self._settings['net'])}, rule={self.derivation_rule}, "
                f"n_choice_groups={self.n_choice_groups}, derived={self.is_derived}")


def _groups(net, points):
    """``[(group name, candidate names)]`` in group order."""
    out = {}
    for cp in points:
        if cp.group not in out:
            names = nnas.searchnet_candidate_names(net, cp.mixedop) or [type(c).__name__ for c in cp.candidates]
            out[cp.group] = (cp.name, names)
    return [out[g] for g in range(len(out))]


def deriver(build):
    """A ``derive_fn`` for a SearchNet you build yourself (nnabla_nas's Runner, your own loop):
    ``choices -> build()`` with every MixedOp replaced by its chosen candidate (fresh weights).

    Args:
        build: a callable with no arguments returning a new SearchNet of the same space, e.g.
            ``functools.partial(darts.SearchNet, 3, 16, 8, 10, shared=True)``.

    Returns:
        ``choices -> fixed Module``, ``choices`` holding one candidate index per choice group.
    """
    if not callable(build):
        raise ValueError(f"build must be a callable returning a new SearchNet, got {build!r}")

    def derive(choices):
        net = build()
        points = find_choice_points(net, require_shapes=False)
        n_groups = len({cp.group for cp in points})
        if len(choices) != n_groups:
            raise ValueError(f"choices must hold one index per choice group ({n_groups}), got {len(choices)}")
        return nnas.replace_mixed_ops(net, per_point(points, choices))

    return derive
