"""The data meets the search space's input: a space may say which images it needs
(``input_shape_for``) and refuse an input shape in one line (``check_input``); nnabla_nas's
SearchNets do both (:class:`~nas_hw.search.spaces.searchnets.SearchNetSpace`)."""
from ..errors import ConfigInputError
from ..search.datasets import adapt_images


def adapt_data(model, dataset):
    """The data at the image shape the space needs: a space may say which (``input_shape_for``:
    nnabla_nas's SearchNets need 3 channels or 32x32, see
    :class:`~nas_hw.search.spaces.searchnets.SearchNetSpace`); the images are then adapted
    (:func:`~nas_hw.search.datasets.adapt_images`) and every latency is measured at that shape."""
    wanted = getattr(model, "input_shape_for", None)
    if wanted is None:
        return dataset
    try:
        return adapt_images(dataset, wanted(tuple(dataset.input_shape)))
    except ValueError as err:
        raise ConfigInputError("space: " + " ".join(str(err).split())) from err


def check_space_input(model, shape):
    """Lets a space that can check an input shape (``check_input``) refuse it in one line."""
    check = getattr(model, "check_input", None)
    if check is None:
        return
    try:
        check(shape)
    except ValueError as err:
        raise ConfigInputError("space." + " ".join(str(err).split())) from err
