"""Small helpers over nnabla graphs shared by the estimators."""
import numpy as np


def functions_of(output):
    """The functions of the graph ending in ``output``, in forward (topological) order."""
    funcs = []
    output.visit(funcs.append)
    return funcs


def leaf_variables(funcs):
    """Variables that no function in ``funcs`` produces: inputs and parameters."""
    seen, leaves = set(), []
    for f in funcs:
        for v in f.inputs:
            if v.parent is None and id(v) not in seen:
                seen.add(id(v))
                leaves.append(v)
    return leaves


def init_unset_inputs(variables):
    """Gives every variable whose data was never written a zero buffer.

    Functions then never read garbage (softmax cross entropy reads labels as indices),
    while inputs and parameters the user did set are left as they are.
    """
    for v in variables:
        if v.data.modification_count == 0:
            v.data.zero()


def random_fill(variables, rng=None):
    """Fills float variables with N(0, 1) data (used for isolated single-layer inputs)."""
    rng = rng or np.random.RandomState(0)
    for v in variables:
        v.d = rng.standard_normal(v.shape).astype(np.float32)
