"""Loading a network to report on: an nnabla ``.nnp`` file or ``module:function``."""
import importlib
import inspect
import os
import sys
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import List

import nnabla as nn
import numpy as np

from ..errors import NetworkInputError
from ..measure.graph import functions_of, non_parameter_leaves
from .nnp import check_networks, read_definition

DEFAULT_INPUT_SHAPE = (1, 3, 32, 32)
#: The seed of the initializers of an .nnp network's parameters (nnabla's NnpLoader uses it too).
NNP_INIT_SEED = 1223


@dataclass
class LoadedNetwork:
    """A network ready to report on.

    Attributes:
        output: the graph's output Variable.
        inputs: its input Variables (they carry the batch axis).
        source: how it was given (the path or ``module:function``).
        name: the network's name (the .nnp network name or the function's name).
        parameters: the parameter scope the graph's parameters live in (kept apart from
            nnabla's global scope, so reporting never touches the caller's parameters). For an
            ``.nnp`` their values come from the definition's initializers, not the file.
    """

    output: nn.Variable
    inputs: List[nn.Variable]
    source: str
    name: str
    parameters: OrderedDict = field(default_factory=OrderedDict, repr=False)


def parse_input_shape(text):
    """``"1,3,32,32"`` -> ``(1, 3, 32, 32)``.

    Raises:
        NetworkInputError: not a comma-separated list of positive integers.
    """
    parts = [p.strip() for p in str(text).strip("()[] ").split(",") if p.strip()]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if not shape or any(d <= 0 for d in shape):
        raise NetworkInputError(f"--input-shape must be comma-separated positive integers "
                                f"such as 1,3,32,32, got {text!r}")
    return shape


def _is_function_spec(spec):
    return ":" in spec and not os.path.exists(spec)


def load_network(spec, input_shape=None, limits=None):
    """Builds the graph of ``spec``: an ``.nnp`` file path or ``module:function``.

    For an ``.nnp`` file the first network is used and its first output; ``input_shape``
    (optional) may change the batch size only, the other axes must match the file's input.
    ``module`` is looked for in the current directory first, then on ``sys.path``.
    An ``.nnp`` is read within ``limits`` (:class:`~nas_hw.report.nnp.NnpLimits`, default
    limits when ``None``): only its network definition is decompressed, parameters are created
    from the definition's shapes (see :mod:`nas_hw.report.nnp`).
    A ``module:function`` that takes an argument is called with an input ``nnabla.Variable``
    of ``input_shape`` (default ``1,3,32,32``); one that takes none builds its own input, and
    then ``input_shape`` must not be given.

    Raises:
        NetworkInputError: missing or invalid file, an archive or network over a limit, unknown
            module or function, a function that does not return an ``nnabla.Variable``, an
            input shape that does not fit.
    """
    if not isinstance(spec, str) or not spec:
        raise NetworkInputError(f"NETWORK must be an .nnp file or module:function, got {spec!r}")
    if _is_function_spec(spec):
        return _load_function(spec, input_shape)
    return _load_nnp(spec, input_shape, limits)


def _load_nnp(path, input_shape, limits):
    from nnabla.core.graph_def import ProtoGraph
    from nnabla.utils.nnp_graph import NnpNetwork

    if not os.path.exists(path):
        raise NetworkInputError(f"network file {path!r} does not exist (NETWORK is an .nnp file "
                                "or module:function)")
    if not os.path.isfile(path):
        raise NetworkInputError(f"network file {path!r} is not a regular file")
    if not path.lower().endswith(".nnp"):
        raise NetworkInputError(f"network file {path!r} is not an .nnp file (NETWORK is an .nnp "
                                "file or module:function)")
    if not zipfile.is_zipfile(path):
        raise NetworkInputError(f"{path!r} is not an .nnp file: an .nnp is a zip archive, this "
                                "file is not one")
    proto = read_definition(path, limits)
    if not proto.network:
        raise NetworkInputError(f"{path!r} holds no network")
    name = proto.network[0].name
    check_networks(path, proto, None, limits)
    params = OrderedDict()
    with nn.parameter_scope("", scope=params):
        try:
            graph = ProtoGraph.from_proto(proto, param_scope=params, rng=np.random.RandomState(NNP_INIT_SEED))
            net = NnpNetwork(graph.networks[name], None, callback=None)
            if input_shape is not None:
                net = _nnp_at_shape(graph, proto, name, net, input_shape, path, limits)
        except NetworkInputError:
            raise
        except Exception as err:
            raise NetworkInputError(f"cannot build network {name!r} of {path!r}: "
                                    f"{type(err).__name__}: {_first_line(err)}") from err
    if not net.outputs:
        raise NetworkInputError(f"network {name!r} of {path!r} has no output")
    output = list(net.outputs.values())[0]
    return LoadedNetwork(output, list(net.inputs.values()), path, name, params)


def _nnp_at_shape(graph, proto, name, net, input_shape, path, limits):
    from nnabla.utils.nnp_graph import NnpNetwork

    inputs = list(net.inputs.values())
    if len(inputs) != 1:
        raise NetworkInputError(f"--input-shape needs a network with one input; {name!r} of "
                                f"{path!r} has {len(inputs)}: {list(net.inputs)}")
    stored = tuple(inputs[0].shape)
    if len(stored) != len(input_shape) or tuple(stored[1:]) != tuple(input_shape[1:]):
        raise NetworkInputError(f"--input-shape {_shape_str(input_shape)} does not fit network "
                                f"{name!r} of {path!r}, whose input is {_shape_str(stored)}: an "
                                ".nnp network's shape is fixed, only the batch size can change")
    if stored[0] == input_shape[0]:
        return net
    check_networks(path, proto, int(input_shape[0]), limits)
    return NnpNetwork(graph.networks[name], int(input_shape[0]), callback=None)


def _load_function(spec, input_shape):
    module_name, _, func_name = spec.partition(":")
    if not module_name or not func_name:
        raise NetworkInputError(f"NETWORK {spec!r}: module:function needs both parts, e.g. "
                                "mypackage.nets:build")
    try:
        module = _import_from_cwd(module_name)
    except ModuleNotFoundError as err:
        raise NetworkInputError(f"cannot import module {module_name!r} of {spec!r}: {err} (looked "
                                f"in the current directory {os.getcwd()!r} and on sys.path; no "
                                f"file named {spec!r} exists either)") from err
    except (Exception, SystemExit) as err:  # user code: a module may even call sys.exit()
        raise NetworkInputError(f"importing module {module_name!r} failed: {type(err).__name__}: "
                                f"{_first_line(err)}") from err
    obj = module
    for part in func_name.split("."):
        if not hasattr(obj, part):
            public = sorted(n for n in dir(module) if not n.startswith("_")
                            and callable(getattr(module, n, None)))
            raise NetworkInputError(f"module {module_name!r} has no function {func_name!r}; its "
                                    f"callables: {public[:20]}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise NetworkInputError(f"{spec!r} is not a function (it is a {type(obj).__name__!r} "
                                "value)")
    takes_input = _takes_an_argument(obj, spec)
    if not takes_input and input_shape is not None:
        raise NetworkInputError(f"{spec!r} takes no argument and builds its own input, so "
                                "--input-shape cannot apply; leave it out")
    params = OrderedDict()
    inputs = []
    with nn.parameter_scope("", scope=params), nn.auto_forward(False):
        try:
            if takes_input:
                x = nn.Variable(tuple(input_shape or DEFAULT_INPUT_SHAPE), need_grad=False)
                inputs = [x]
                out = obj(x)
            else:
                out = obj()
        except (Exception, SystemExit) as err:  # user code: sys.exit() too ends in one line
            raise NetworkInputError(f"{spec!r} raised {type(err).__name__}: {_first_line(err)}") from err
        if not isinstance(out, nn.Variable):
            raise NetworkInputError(f"{spec!r} returned {type(out).__name__}, expected the "
                                    "network's output nnabla.Variable")
        if out.parent is None:
            raise NetworkInputError(f"{spec!r} returned a Variable computed by no function "
                                    "(an input or a parameter), so there is no network to report")
        if not inputs:
            inputs = non_parameter_leaves(functions_of(out))
    return LoadedNetwork(out, inputs, spec, func_name, params)


def _import_from_cwd(module_name):
    """``importlib.import_module`` with the current directory first on ``sys.path`` during the
    import, as ``python -m`` has it (an installed ``nas-hw`` script's path starts at its own
    bin directory, so ``mymod.py`` beside the user was not found)."""
    cwd = os.getcwd()
    if cwd in sys.path or "" in sys.path:
        return importlib.import_module(module_name)
    sys.path.insert(0, cwd)
    try:
        importlib.invalidate_caches()
        return importlib.import_module(module_name)
    finally:
        sys.path.remove(cwd)


def _takes_an_argument(fn, spec):
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return True  # a builtin or C callable: assume it takes the input
    params = [p for p in sig.parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    required = [p for p in params if p.default is p.empty and p.kind != p.VAR_POSITIONAL]
    if len(required) > 1:
        raise NetworkInputError(f"{spec!r} needs {len(required)} arguments "
                                f"({[p.name for p in required]}); it must take none or one (the input Variable)")
    return bool(params)


def _first_line(err):
    text = str(err).strip()
    return text.splitlines()[0] if text else repr(err)


def _shape_str(shape):
    return ",".join(str(int(d)) for d in shape)
