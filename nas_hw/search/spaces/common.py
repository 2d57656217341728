"""What nas_hw's own search spaces share: checked constructor arguments, choice groups and
derivation (``derive(choices)`` builds the fixed network of an architecture)."""
from collections import OrderedDict

import numpy as np
from nnabla.initializer import ConstantInitializer
from nnabla_nas.module import BatchNormalization, MixedOp, Module, Parameter

from ...checks import check_int, check_one_of
from ...constants import MAX_BLOCKS, MAX_CHANNELS
from ...nas.choices import argmax_choices

MODES = ('full', 'sample', 'max')
ZERO = 'zero'
ALPHA_NAME = '_alpha'


# ----------------------------------------------------------------------------- validation

def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_pos_int(name, value, high=MAX_CHANNELS):
    return check_int(name, value, low=1, high=high)


def _check_int_tuple(name, values, allowed=None, unique=False, allow_empty=False, high=MAX_CHANNELS):
    if isinstance(values, (str, bytes)) or not hasattr(values, '__iter__'):
        raise ValueError(f"{name} must be a sequence of ints, got {values!r}")
    values = tuple(values)
    if not values and not allow_empty:
        raise ValueError(f"{name} must not be empty")
    if len(values) > MAX_BLOCKS:
        raise ValueError(f"{name} must hold at most {MAX_BLOCKS} values, got {len(values)}")
    for v in values:
        if not _is_int(v) or (allowed is None and not 0 < v <= high) or (allowed is not None
                                                                         and v not in allowed):
            what = f"values in {tuple(allowed)}" if allowed is not None else f"ints in [1, {high}]"
            raise ValueError(f"{name} must hold {what}, got {values!r}")
    if unique and len(set(values)) != len(values):
        raise ValueError(f"{name} must not repeat a value, got {values!r}")
    return tuple(int(v) for v in values)


def _check_mode(mode):
    return check_one_of("mode", mode, MODES)


def _check_choices(choices, groups):
    """Validate ``choices`` against ``groups`` [(group_name, candidate_names), ...]."""
    if choices is None:
        return None
    if isinstance(choices, (str, bytes)) or not hasattr(choices, '__iter__'):
        raise ValueError(f"choices must be a list of ints (one per choice group), got {choices!r}")
    choices = list(choices)
    if len(choices) != len(groups):
        raise ValueError(f"choices must hold one index per choice group ({len(groups)} groups: "
                         f"{[g for g, _ in groups]}), got {len(choices)}: {choices!r}")
    for c, (group, names) in zip(choices, groups):
        if not _is_int(c) or not 0 <= c < len(names):
            raise ValueError(f"choice for group {group!r} must be an int in "
                             f"[0, {len(names)}) indexing {list(names)}, got {c!r}")
    return tuple(int(c) for c in choices)


def _check_input(x, in_channels):
    if len(x.shape) != 4 or x.shape[1] != in_channels:
        raise ValueError(f"input must have shape (B, {in_channels}, H, W), got {tuple(x.shape)}")


class SpaceBase(Module):
    """Common machinery: stored constructor arguments, choice groups, derivation."""

    def _init_common(self, config, groups, seed):
        self._config = dict(config)
        self._groups = [(g, tuple(names)) for g, names in groups]
        self._choices = _check_choices(config['choices'], self._groups)
        self._rng = np.random.RandomState(seed)

    # -- description of the space
    @property
    def config(self):
        """dict: the constructor arguments this instance was built with."""
        return dict(self._config)

    @property
    def n_choice_groups(self):
        """int: number of architecture-parameter groups (length of ``choices``)."""
        return len(self._groups)

    @property
    def choice_group_names(self):
        """list of str: one readable name per choice group, in ``choices`` order."""
        return [g for g, _ in self._groups]

    @property
    def candidate_names_per_group(self):
        """list of list of str: the candidate names of each choice group, in index order."""
        return [list(names) for _, names in self._groups]

    @property
    def choices(self):
        """tuple of int or None: the chosen candidate per group for a derived network."""
        return self._choices

    @property
    def is_derived(self):
        """bool: True for a fixed network built from ``choices`` (no MixedOp, no alpha)."""
        return self._choices is not None

    def choice_names(self, choices=None):
        """Candidate names for ``choices`` (default: this derived network's choices).

        Args:
            choices: list of int, one per group.

        Returns:
            list of str: the chosen candidate name of each group.
        """
        if choices is None:
            if self._choices is None:
                raise ValueError("this is a search network: pass choices explicitly")
            choices = self._choices
        choices = _check_choices(choices, self._groups)
        return [names[c] for c, (_, names) in zip(choices, self._groups)]

    @classmethod
    def describe_choice_groups(cls, **kwargs):
        """Choice groups of the space the constructor arguments describe, without building it.

        Args:
            **kwargs: constructor arguments (``choices`` and ``mode`` are ignored).

        Returns:
            list of (str, list of str): ``(group_name, candidate_names)`` in ``choices`` order.
        """
        kwargs = dict(kwargs)
        kwargs.pop('choices', None)
        kwargs.pop('mode', None)
        config = cls._validate(**kwargs)
        return [(g, list(names)) for g, names in cls._plan_groups(config)]

    def derive(self, choices):
        """Build the derived fixed network of the same space.

        Args:
            choices: list of int, one candidate index per choice group.

        Returns:
            a new instance of this class with the same constructor arguments and ``choices``.
        """
        config = dict(self._config)
        config['choices'] = list(_check_choices(choices, self._groups))
        return type(self)(**config)

    # -- architecture parameters
    def mixed_ops(self):
        """list of MixedOp: every choice point, in ``get_modules()`` order."""
        return [m for _, m in self.get_modules() if isinstance(m, MixedOp)]

    def get_arch_parameters(self, grad_only=False):
        """The distinct architecture parameters, one per choice group, in group order.

        Args:
            grad_only: keep only parameters with ``need_grad=True``.

        Returns:
            OrderedDict: name -> Parameter (empty for a derived network).
        """
        out, seen = OrderedDict(), set()
        for key, p in self.get_parameters(grad_only=grad_only).items():
            if key.split('/')[-1] == ALPHA_NAME and id(p) not in seen:
                seen.add(id(p))
                out[key] = p
        return out

    def get_net_parameters(self, grad_only=False):
        """All parameters except the architecture parameters.

        Args:
            grad_only: keep only parameters with ``need_grad=True``.

        Returns:
            OrderedDict: name -> Parameter.
        """
        return OrderedDict((k, p) for k, p in self.get_parameters(grad_only=grad_only).items()
                           if k.split('/')[-1] != ALPHA_NAME)

    def argmax_choices(self):
        """The most likely candidate of each group according to the current alphas.

        Returns:
            list of int: one index per group (a derived network returns its own choices).
        """
        if self.is_derived:
            return list(self._choices)
        choices = argmax_choices(self)
        if len(choices) != self.n_choice_groups:
            raise RuntimeError(f"found {len(choices)} architecture parameters for "
                               f"{self.n_choice_groups} choice groups")
        return choices

    def _mixed(self, candidates, alpha=None, name=''):
        return MixedOp(candidates, mode=self._config['mode'], alpha=alpha, rng=self._rng,
                       name=name)

    def _new_alpha(self, n):
        return Parameter((n, 1, 1, 1, 1), initializer=ConstantInitializer(0.0))


def _bn(channels):
    return BatchNormalization(channels, 4)
