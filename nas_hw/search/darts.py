"""First-order DARTS: MixedOps in mode ``'full'``; the architecture loss is the valid loss plus
the latency penalty, minimised by gradient descent on the alphas."""
from .loop import Searcher


class DartsSearcher(Searcher):
    """First-order DARTS: arch loss = valid loss + latency penalty, gradient descent."""

    algorithm = "darts"
    mixedop_mode = "full"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._arch_graph = None

    def arch_step(self, x_np, y_np):
        """One gradient step of the alphas on a valid batch."""
        if self._arch_graph is None or self._arch_graph[0].shape != x_np.shape:
            x, y, logits, loss = self._build(x_np.shape, training=True)
            total = self.penalty.apply(loss) if self.penalty is not None else loss
            self._arch_graph = (x, y, loss, total)
        x, y, loss, total = self._arch_graph
        self.model.apply(training=True)
        x.d, y.d = x_np, y_np
        self.arch_solver.zero_grad()
        total.forward(clear_no_need_grad=True)
        total.backward(clear_buffer=True)
        if self.arch_weight_decay:
            self.arch_solver.weight_decay(self.arch_weight_decay)
        self.arch_solver.update()
        return {"arch_loss": float(total.d), "valid_loss": float(loss.d)}

    def load_extra_state(self, state):
        """Drops the cached architecture graph."""
        self._arch_graph = None
