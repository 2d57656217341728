"""Training a derived (fixed) architecture from scratch and scoring it."""
import logging

import nnabla as nn
import nnabla.functions as F
import numpy as np
from tqdm.auto import tqdm

from ..checks import check_batch_size, check_int, check_number, check_one_of
from ..constants import MAX_EPOCHS, MAX_LR, MAX_WEIGHT_DECAY, OPTIMIZERS
from .datasets import iterate_batches
from .loop import accuracy, make_solver

logger = logging.getLogger(__name__)


def evaluate(net, split, batch_size=256):
    """Accuracy of ``net`` (inference mode) on a :class:`~nas_hw.search.datasets.Split`."""
    if len(split) == 0:
        raise ValueError("cannot evaluate on an empty split")
    net.apply(training=False)
    graphs = {}
    correct = 0.0
    for x_np, y_np in iterate_batches(split.x, split.y, batch_size, shuffle=False):
        if x_np.shape not in graphs:
            x = nn.Variable(x_np.shape)
            graphs[x_np.shape] = (x, net(x))
        x, logits = graphs[x_np.shape]
        x.d = x_np
        logits.forward(clear_buffer=True)
        correct += accuracy(logits.d, y_np) * len(x_np)
    return correct / len(split)


def train_from_scratch(net, dataset, epochs=20, batch_size=64, max_batches=None,
                       optimizer="momentum", lr=0.05, momentum=0.9, weight_decay=1e-4, seed=0,
                       progress=False):
    """Trains a fixed network on the train split with a cosine learning-rate schedule.

    Args:
        net: the derived network (an nnabla_nas ``Module`` without choices), freshly built.
        dataset: a :class:`~nas_hw.search.datasets.Dataset`.
        epochs: training epochs (> 0).
        batch_size: mini-batch size.
        max_batches: cap on batches per epoch (``None``: the whole split).
        optimizer, lr, momentum, weight_decay: the solver.
        seed: seeds the batch order.
        progress: show a tqdm bar.

    Returns:
        dict: ``train_loss`` (last epoch), ``valid_acc`` (``None`` without a valid split)
        and ``test_acc``.
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    train = dataset.train
    n_batches = len(train) // batch_size
    if n_batches == 0:
        raise ValueError(f"batch_size {batch_size} is larger than the train split ({len(train)})")
    if max_batches is not None:
        n_batches = min(n_batches, max_batches)
    params = net.get_parameters(grad_only=True)
    if not params:
        raise ValueError("the network has no trainable parameters")
    solver = make_solver(optimizer, lr, momentum)
    solver.set_parameters(params)
    rng = np.random.RandomState(seed)

    net.apply(training=True)
    x = nn.Variable((batch_size,) + tuple(train.x.shape[1:]))
    y = nn.Variable((batch_size, 1))
    loss = F.mean(F.softmax_cross_entropy(net(x), y))
    total_steps, step = epochs * n_batches, 0
    bar = tqdm(total=total_steps, desc="retrain", disable=not progress, leave=False)
    for epoch in range(epochs):
        net.apply(training=True)
        losses = []
        batches = iterate_batches(train.x, train.y, batch_size, rng=rng, shuffle=True,
                                  drop_last=True)
        for _, (x_np, y_np) in zip(range(n_batches), batches):
            solver.set_learning_rate(lr * 0.5 * (1 + np.cos(np.pi * step / total_steps)))
            x.d, y.d = x_np, y_np
            solver.zero_grad()
            loss.forward(clear_no_need_grad=True)
            loss.backward(clear_buffer=True)
            if weight_decay:
                solver.weight_decay(weight_decay)
            solver.update()
            losses.append(float(loss.d))
            step += 1
            bar.update(1)
        logger.debug("retrain epoch %d: loss %.4f", epoch, np.mean(losses))
    bar.close()
    valid_acc = evaluate(net, dataset.valid) if len(dataset.valid) else None
    test_acc = evaluate(net, dataset.test)
    logger.info("retrained %d epochs: loss %.4f, valid acc %s, test acc %.4f", epochs,
                np.mean(losses), f"{valid_acc:.4f}" if valid_acc is not None else "n/a", test_acc)
    return {"train_loss": float(np.mean(losses)), "valid_acc": valid_acc, "test_acc": test_acc}


class Retrainer:
    """Settings of :func:`train_from_scratch`, checked when built (a bad value fails before a
    search starts, not after it); ``epochs=0`` trains nothing.

    Example:
        >>> Retrainer(epochs=20).train(model.derive(choices), dataset, seed=0)
    """

    def __init__(self, epochs=20, batch_size=64, max_batches=None, optimizer="momentum", lr=0.05,
                 momentum=0.9, weight_decay=1e-4):
        self.epochs = check_int("epochs", epochs, low=0, high=MAX_EPOCHS)
        self.batch_size = check_batch_size(batch_size)
        self.max_batches = check_int("max_batches", max_batches, low=1, allow_none=True)
        self.optimizer = check_one_of("optimizer", optimizer, OPTIMIZERS)
        self.lr = check_number("lr", lr, low=0, low_open=True, high=MAX_LR)
        self.momentum = check_number("momentum", momentum, low=0, high=1, high_open=True)
        self.weight_decay = check_number("weight_decay", weight_decay, low=0, high=MAX_WEIGHT_DECAY)

    def train(self, net, dataset, seed=0, progress=False):
        """Trains ``net`` from scratch (see :func:`train_from_scratch`); ``None`` when
        ``epochs`` is 0."""
        if self.epochs == 0:
            return None
        return train_from_scratch(net, dataset, epochs=self.epochs, batch_size=self.batch_size,
                                  max_batches=self.max_batches, optimizer=self.optimizer, lr=self.lr,
                                  momentum=self.momentum, weight_decay=self.weight_decay, seed=seed,
                                  progress=progress)
