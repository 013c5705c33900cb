"""Repeated jit-compiled optimizer steps on one batch, for the tests that a head can learn."""
import mindspore as ms
import numpy as np


def step_losses(loss_fn, optimizer, batch, steps: int) -> list:
    """The loss before each of `steps` graph-mode steps of optimizer on loss_fn(*batch)."""
    grad_fn = ms.value_and_grad(loss_fn, None, optimizer.parameters)

    @ms.jit
    def step(*inputs):
        loss, grads = grad_fn(*inputs)
        optimizer(grads)
        return loss

    losses = [float(step(*batch).asnumpy()) for _ in range(steps)]
    assert np.isfinite(losses).all(), losses
    return losses
