"""The argument checks every constructor shares.

Each check returns the value (normalised: an ``int``, a ``float``) or raises ``ValueError``
(``TypeError`` where the type is wrong in a way no value could fix) with a one-line message
naming the argument and what is allowed. Booleans are never numbers here.
"""
import math
import os

import numpy as np

from .constants import (DTYPE_BYTES, EXT_NAMES, MAX_BATCH_SIZE, MAX_DEVICE_ID, MAX_FILENAME_BYTES,
                        MAX_MEASURE_TIME_S, MAX_N_RUN, MAX_N_WARMUP, MAX_SEED, TIME_SCALES, TYPE_CONFIGS)


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _interval(low, high, low_open, high_open):
    if high is None:
        return f"{'>' if low_open else '>='} {low}"
    if low is None:
        return f"{'<' if high_open else '<='} {high}"
    return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"


def check_int(name, value, low=None, high=None, allow_none=False):
    """An integer in ``[low, high]`` (either bound optional)."""
    if value is None and allow_none:
        return None
    if not _is_int(value) or (low is not None and value < low) or (high is not None and value > high):
        bound = "" if low is None and high is None else " " + _interval(low, high, False, False)
        none = " or None" if allow_none else ""
        raise ValueError(f"{name} must be an integer{bound}{none}, got {value!r}")
    return int(value)


def check_number(name, value, low=None, high=None, low_open=False, high_open=False, allow_none=False):
    """A finite real number within the given bounds (``low_open``: ``> low`` instead of ``>=``)."""
    if value is None and allow_none:
        return None
    ok = _is_real(value) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        bound = "" if low is None and high is None else " " + _interval(low, high, low_open, high_open)
        none = " or None" if allow_none else ""
        raise ValueError(f"{name} must be a finite number{bound}{none}, got {value!r}")
    return float(value)


def check_positive(name, value, allow_none=False):
    """A finite number > 0."""
    return check_number(name, value, low=0, low_open=True, allow_none=allow_none)


def check_fraction(name, value, high=1.0):
    """A fraction in ``[0, high)``."""
    if not (_is_real(value) and math.isfinite(value) and 0 <= value < high):
        raise ValueError(f"{name} must be a fraction in [0, {high}), got {value!r}")
    return float(value)


def check_one_of(name, value, allowed):
    """One of ``allowed`` (a tuple, or the keys of a dict)."""
    allowed = tuple(allowed)
    try:
        ok = value in allowed
    except TypeError:  # an unhashable value against dict keys
        ok = False
    if isinstance(value, bool) and not any(a is value for a in allowed):
        ok = False  # True == 1: a flag is not a choice among numbers
    if not ok:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def check_bool(name, value):
    """``True`` or ``False`` (not a truthy number or string)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_time_scale(time_scale, name="time_scale"):
    """One of the seed's time scales ('m', 'u', 'n')."""
    if not isinstance(time_scale, str) or time_scale not in TIME_SCALES:
        raise ValueError(f"{name} must be one of {tuple(TIME_SCALES)} (milli, micro, nano seconds), "
                         f"got {time_scale!r}")
    return time_scale


def check_ext_name(ext_name):
    """One of :data:`~nas_hw.constants.EXT_NAMES`."""
    if not isinstance(ext_name, str) or ext_name not in EXT_NAMES:
        raise ValueError(f"ext_name must be one of {EXT_NAMES}, got {ext_name!r}")
    return ext_name


def check_type_config(type_config):
    """One of :data:`~nas_hw.constants.TYPE_CONFIGS`."""
    if not isinstance(type_config, str) or type_config not in TYPE_CONFIGS:
        raise ValueError(f"type_config must be one of {TYPE_CONFIGS}, got {type_config!r}")
    return type_config


def check_device_id(device_id):
    """A device index: an ``int`` >= 0 (a string of digits is accepted, as nnabla takes one)."""
    try:
        value = int(device_id)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"device_id must be a non-negative integer, got {device_id!r}") from None
    if isinstance(device_id, bool) or value < 0 or str(value) != str(device_id).strip():
        raise ValueError(f"device_id must be a non-negative integer, got {device_id!r}")
    if value > MAX_DEVICE_ID:
        raise ValueError(f"device_id must be an integer in [0, {MAX_DEVICE_ID}], got {device_id!r}")
    return value


def check_timing(n_run=100, n_warmup=10, max_measure_execution_time=1.0, outlier=0.0, time_scale="m"):
    """The measurement settings shared by every timing object (the seed's names); upper bounds:
    :data:`~nas_hw.constants.MAX_N_RUN`, ``MAX_N_WARMUP``, ``MAX_MEASURE_TIME_S``."""
    check_n_run(n_run)
    check_int("n_warmup", n_warmup, low=0, high=MAX_N_WARMUP)
    if not (_is_real(max_measure_execution_time) and math.isfinite(max_measure_execution_time)
            and 0 < max_measure_execution_time <= MAX_MEASURE_TIME_S):
        raise ValueError(f"max_measure_execution_time must be a number of seconds in (0, {MAX_MEASURE_TIME_S:g}], "
                         f"got {max_measure_execution_time!r}")
    check_fraction("outlier", outlier, 0.5)
    check_time_scale(time_scale)


def check_n_run(n_run, name="n_run"):
    """Timed runs of one measurement: an integer in [1, :data:`~nas_hw.constants.MAX_N_RUN`]."""
    return check_int(name, n_run, low=1, high=MAX_N_RUN)


def check_batch_size(batch_size, allow_none=False, name="batch_size"):
    """A batch size: an integer in [1, :data:`~nas_hw.constants.MAX_BATCH_SIZE`]."""
    return check_int(name, batch_size, low=1, high=MAX_BATCH_SIZE, allow_none=allow_none)


def check_seed(seed, name="seed"):
    """A random seed: an integer in [0, :data:`~nas_hw.constants.MAX_SEED`]."""
    return check_int(name, seed, low=0, high=MAX_SEED)


def check_shape(name, shape, ndim=None):
    """A tuple of positive ints (of ``ndim`` axes when given)."""
    ok = not isinstance(shape, (str, bytes)) and hasattr(shape, "__iter__")
    values = tuple(shape) if ok else ()
    ok = ok and len(values) > 0 and all(_is_int(d) and d > 0 for d in values)
    if ok and ndim is not None:
        ok = len(values) == ndim
    if not ok:
        what = f"{ndim} positive ints" if ndim else "positive ints"
        raise ValueError(f"{name} must be {what}, got {shape!r}")
    return tuple(int(d) for d in values)


def check_filename(name, value):
    """A plain file name (no directory part, no NUL, at most
    :data:`~nas_hw.constants.MAX_FILENAME_BYTES` bytes in UTF-8)."""
    ok = isinstance(value, str) and value and os.path.basename(value) == value and value not in (".", "..")
    if ok:
        try:
            ok = "\0" not in value and len(value.encode("utf-8")) <= MAX_FILENAME_BYTES
        except UnicodeEncodeError:  # a lone surrogate
            ok = False
    if not ok:
        shown = value if not isinstance(value, str) or len(value) <= 80 else value[:60] + f"... ({len(value)} characters)"
        raise ValueError(f"{name} must be a plain file name of at most {MAX_FILENAME_BYTES} bytes, got {shown!r}")
    return value


def dtype_bytes(dtype):
    """Bytes per element of ``dtype`` (a name from :data:`~nas_hw.constants.DTYPE_BYTES`)."""
    try:
        return DTYPE_BYTES[dtype]
    except (KeyError, TypeError):
        raise ValueError(f"dtype must be one of {tuple(DTYPE_BYTES)}, got {dtype!r}") from None
