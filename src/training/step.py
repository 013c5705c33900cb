"""One optimizer step, compiled: micro-batch gradients accumulate, then one guarded update.

The update divides the accumulated gradients by accumulation_steps and the loss scale,
averages them across data-parallel ranks, skips the update when any gradient is not
finite or their global norm overflows (lowering the loss scale), clips by global norm, and
applies the optimizer.
"""
from typing import Callable, Optional

import mindspore as ms
from mindspore import Parameter, ParameterTuple, Tensor, nn, ops

from src.training.config import TrainConfig
from src.training.optimizers import SumOfSquares


class GlobalNorm(nn.Cell):
    """The L2 norm of all gradients together (inf or nan when any element is)."""

    def __init__(self):
        super().__init__()
        self.sum_of_squares = SumOfSquares()

    def construct(self, grads):
        return ops.sqrt(ops.addn([self.sum_of_squares(g) for g in grads]))


class LossScale(nn.Cell):
    """Dynamic loss scale (the seeds' loss_scale_value / scale_factor / scale_window).

    Disabled, the scale stays 1 and only the finiteness guard remains.
    """

    def __init__(self, config: TrainConfig):
        super().__init__()
        self.dynamic = config.enable_lossscale
        start = config.loss_scale_value if self.dynamic else 1.0
        self.scale = Parameter(Tensor(start, ms.float32), name="loss_scale", requires_grad=False)
        self.good_steps = Parameter(Tensor(0, ms.int32), name="loss_scale_good_steps",
                                    requires_grad=False)
        self.factor = config.scale_factor
        self.window = config.scale_window

    def update(self, finite: Tensor) -> Tensor:
        if not self.dynamic:
            return finite
        if finite:
            ops.assign_add(self.good_steps, Tensor(1, ms.int32))
            if self.good_steps >= self.window:
                ops.assign(self.scale, self.scale * self.factor)
                ops.assign(self.good_steps, Tensor(0, ms.int32))
        else:
            ops.assign(self.scale, ops.maximum(self.scale / self.factor, 1.0))
            ops.assign(self.good_steps, Tensor(0, ms.int32))
        return finite


class TrainStep:
    """Holds the compiled functions of one run: with accumulation_steps 1 a single graph
    (gradients go straight to the update, no buffers); otherwise a micro-batch graph adding
    into accumulation buffers and an update graph reading them."""

    def __init__(self, loss_fn: Callable[..., Tensor], optimizer: nn.Optimizer,
                 config: TrainConfig, reducer: Optional[nn.Cell] = None):
        self.optimizer = optimizer
        self.params = optimizer.parameters
        self.loss_scale = LossScale(config)
        self.steps = config.accumulation_steps
        self.max_norm = config.max_grad_norm
        self.reducer = reducer
        loss_scale = self.loss_scale

        def scaled_loss(*batch):
            return loss_fn(*batch) * loss_scale.scale
        grad_fn = ms.value_and_grad(scaled_loss, None, self.params)
        update = self._update_fn()
        if self.steps == 1:
            def whole(*batch):
                loss, grads = grad_fn(*batch)
                return loss / loss_scale.scale, update(grads)
            self.whole = ms.jit(whole)
            return
        self.accum = ParameterTuple([Parameter(ops.zeros(p.shape, p.dtype), name=f"accum.{p.name}",
                                               requires_grad=False) for p in self.params])
        self.micro = ms.jit(self._micro_fn(grad_fn))
        self.apply = ms.jit(self._apply_fn(update))

    def _update_fn(self):
        """grads (summed over the step's micro-batches, scaled) -> guarded optimizer update."""
        loss_scale, optimizer, reducer = self.loss_scale, self.optimizer, self.reducer
        global_norm = GlobalNorm()
        divisor, max_norm = float(self.steps), self.max_norm

        def update(grads):
            if reducer is not None:
                grads = reducer(grads)
            # Unscaling and clipping fold into one factor and one multiply per gradient: on
            # CPU every elementwise pass over all gradients held another full copy of them
            # (benchmarks/README.md, "Memory"). A non-finite gradient makes the norm
            # non-finite, so the norm is also the finiteness check (a sum of squares past
            # float32's range skips the step too, and lowers a dynamic loss scale).
            unscale = 1.0 / (divisor * loss_scale.scale)
            norm = global_norm(grads) * unscale
            finite = ops.isfinite(norm)
            if finite:
                factor = unscale * max_norm / ops.maximum(norm, max_norm)
                optimizer(grads, factor)
            return loss_scale.update(finite)
        return update

    def _micro_fn(self, grad_fn):
        accum, loss_scale = self.accum, self.loss_scale

        def micro(*batch):
            scaled_loss, grads = grad_fn(*batch)
            for a, g in zip(accum, grads):
                ops.assign_add(a, g)
            return scaled_loss / loss_scale.scale
        return micro

    def _apply_fn(self, update):
        accum = self.accum

        def apply():
            applied = update(tuple(accum))
            for a in accum:
                ops.assign(a, ops.zeros_like(a))
            return applied
        return apply

    def run(self, micro_batches) -> tuple:
        """Accumulate over the micro-batches, update once; returns (mean loss, applied)."""
        if self.steps == 1:
            loss, applied = self.whole(*micro_batches[0])
            return float(loss.asnumpy()), bool(applied.asnumpy())
        losses = [float(self.micro(*batch).asnumpy()) for batch in micro_batches]
        applied = bool(self.apply().asnumpy())
        return sum(losses) / len(losses), applied
