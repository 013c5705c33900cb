"""AdamW and LAMB, the seeds' two optimizers; no weight decay on biases and LayerNorm."""
from typing import List

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn, ops

from src.errors import UserError
from src.models import cpu_kernels

OPTIMIZERS = ("adamw", "lamb", "adamweightdecay")


def decay_groups(params: List[Parameter], weight_decay: float) -> List[dict]:
    """Two groups: matrices and embeddings decay; biases and LayerNorm gamma/beta do not."""
    no_decay = (".bias", ".gamma", ".beta")
    decay = [p for p in params if not p.name.endswith(no_decay)]
    rest = [p for p in params if p.name.endswith(no_decay)]
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": rest, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def sum_of_squares(x: Tensor) -> Tensor:
    """Sum of x's squared elements, reduced over rows first: MindSpore's CPU ReduceSum over
    all elements of a matrix runs 6-10x slower than over its rows and then the short result
    (ops.norm of BERT-base's gradients took ~0.3 s of a 2.5 s step; benchmarks/README.md,
    "Speed")."""
    rows = x.reshape(-1, x.shape[-1]) if x.ndim > 1 else x.reshape(1, -1)
    return ops.square(rows).sum(0).sum()


class SumOfSquares(nn.Cell):
    """sum_of_squares in one pass of a fused kernel on float32 CPU inputs (the plain ops
    write the squares out and read them back: all BERT-base gradients 46 vs 18 ms)."""

    def __init__(self):
        super().__init__()
        self.fused = cpu_kernels.enabled()
        if self.fused:
            self.kernel = cpu_kernels.custom_op("SumOfSquares", out_shape=cpu_kernels.one_value)

    def construct(self, x):
        if self.fused and x.dtype == ms.float32:
            return self.kernel(x.reshape(-1)).reshape(())
        return sum_of_squares(x)


class AdamW(nn.AdamWeightDecay):
    """Bias-corrected Adam with decoupled weight decay (AdamW as HF transformers and PaddleNLP
    run it) on MindSpore's fused Adam kernel: each decaying weight is first scaled by
    1 - lr * weight_decay (in place), then Adam's kernel applies lr * sqrt(c2) / c1 * m / (sqrt(v) +
    eps * sqrt(c2)) with c1 = 1 - beta1^t, c2 = 1 - beta2^t, which is exactly the
    bias-corrected update. bias_correction=False is Google BERT's and the model zoo's
    AdamWeightDecay (powers 0: lr and eps as given). The moments keep AdamWeightDecay's
    names (adam_m, adam_v); its own fused kernel runs ~4x slower than Adam's plus the
    decay multiply on CPU (benchmarks/README.md, "Speed").

    optimizer(gradients, grad_scale) updates with gradients * grad_scale, each multiply next
    to its tensor's update: scaling all gradients before the call held a scaled copy of
    every gradient at once on CPU (+630 MB at BERT-base, benchmarks/README.md "Memory").
    Where the fused CPU kernels run, one kernel does the multiply, the decay and Adam's
    update of each tensor in a single in-place pass (_fused_update)."""

    def __init__(self, *args, bias_correction: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.bias_correction = bias_correction
        self.adam = ops.Adam()
        # in place, one pass: ~2.5x faster on CPU than assigning w * (1 - lr * decay)
        self.shrink = ops.ApplyGradientDescent()
        # one in-place pass a tensor where the fused CPU kernels run (all weights float32)
        self.fused = (cpu_kernels.enabled()
                      and all(p.dtype == ms.float32 for p in self._parameters))
        if self.fused:
            self.adamw = cpu_kernels.custom_op("AdamWInPlace", out_shape=cpu_kernels.one_value)
            # it writes its first three inputs: never pruned, ordered with the other writes
            self.adamw.add_prim_attr("side_effect_mem", True)

    def construct(self, gradients, grad_scale=1.0):
        weight_decay = self.get_weight_decay()
        lr = self.get_lr()
        self.assignadd(self.global_step, self.global_step_increase_tensor)
        power1, power2, eps_t = ops.zeros((), ms.float32), ops.zeros((), ms.float32), self.eps
        if self.bias_correction:
            t = self.global_step.astype(ms.float32)
            power1, power2 = ops.pow(self.beta1, t), ops.pow(self.beta2, t)
            eps_t = self.eps * ops.sqrt(1.0 - power2)
        if self.fused:
            step = lr * ops.sqrt(1.0 - power2) / (1.0 - power1)
            return self._fused_update(gradients, lr, weight_decay,
                                      (grad_scale, step, self.beta1, self.beta2, eps_t))
        for i in range(len(self._parameters)):
            w = self._parameters[i]
            g = gradients[i] * grad_scale
            if self.decay_flags[i]:  # w -= lr * decay * w
                g = ops.depend(g, self.shrink(w, lr * self._decay(weight_decay, i), w))
            self.adam(w, self.moments1[i], self.moments2[i], power1, power2, lr,
                      self.beta1, self.beta2, eps_t, g.astype(w.dtype))
        return True

    def _fused_update(self, gradients, lr, weight_decay, scalars):
        """AdamWInPlace (cpu_kernels.cc) on every weight: the gradient scale, the decoupled
        decay and Adam in one read and write of the weight and its moments, where the stock
        kernels above take three (benchmarks/README.md, "Speed")."""
        one = ops.ones((1,), ms.float32)
        k = ops.concat([(one * x).reshape(-1) for x in scalars])
        no_decay = ops.zeros((1,), ms.float32)
        for i in range(len(self._parameters)):
            w = self._parameters[i]
            shrink = one * lr * self._decay(weight_decay, i) if self.decay_flags[i] else no_decay
            self.adamw(w, self.moments1[i], self.moments2[i], gradients[i].astype(w.dtype), k,
                       shrink)
        return True

    def _decay(self, weight_decay, i):
        """Parameter i's weight decay (its group's, where the optimizer has groups)."""
        return weight_decay[i] if self.is_group else weight_decay


class Lamb(nn.Optimizer):
    """LAMB (You et al. 2020) from plain ops, so it runs on every backend (MindSpore's fused
    Lamb kernel has no CPU implementation): the bias-corrected AdamW update scaled per tensor
    by the trust ratio ||w|| / ||update||. Called as AdamW is, (gradients, grad_scale)."""

    def __init__(self, params, learning_rate, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-6):
        super().__init__(learning_rate, params, 0.0)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.moments1 = self._parameters.clone(prefix="lamb_m", init="zeros")
        self.moments2 = self._parameters.clone(prefix="lamb_v", init="zeros")
        self.sum_of_squares = SumOfSquares()

    def construct(self, gradients, grad_scale=1.0):
        weight_decay = self.get_weight_decay()
        lr = self.get_lr()
        self.assignadd(self.global_step, self.global_step_increase_tensor)
        t = self.global_step.astype(ms.float32)
        # no division by a tensor: on CPU every RealDiv kernel keeps ~16 bytes per element
        # alive for the life of the graph (benchmarks/README.md, "Memory")
        inverse_c1 = 1.0 / (1.0 - ops.pow(self.beta1, t))
        inverse_c2 = 1.0 / (1.0 - ops.pow(self.beta2, t))
        done = t
        for i in range(len(self._parameters)):
            # chained one after another: graph mode may then reuse one tensor's buffers for the next
            w, g = self._parameters[i], ops.depend(gradients[i], done) * grad_scale
            m = self.beta1 * self.moments1[i] + (1.0 - self.beta1) * g
            v = self.beta2 * self.moments2[i] + (1.0 - self.beta2) * g * g
            ops.assign(self.moments1[i], m)
            ops.assign(self.moments2[i], v)
            decay = weight_decay[i] if self.is_group else weight_decay
            root_v = ops.sqrt(v * inverse_c2) + self.eps
            update = (m * inverse_c1) * ops.reciprocal(root_v) + decay * w
            w_norm = ops.sqrt(self.sum_of_squares(w))
            u_norm = ops.sqrt(self.sum_of_squares(update))
            trust = ops.select((w_norm > 0) & (u_norm > 0), w_norm / u_norm,
                               ops.ones_like(w_norm))
            done = ops.assign(w, w - (lr * trust) * update)
        return True


def build_optimizer(params: List[Parameter], name: str, lrs: np.ndarray, weight_decay: float,
                    beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-6) -> nn.Optimizer:
    """The optimizer over `params`, its learning rate indexed by its own global step."""
    groups = decay_groups(params, weight_decay)
    lr = Tensor(lrs)
    if name == "adamw":
        return AdamW(groups, learning_rate=lr, beta1=beta1, beta2=beta2, eps=eps)
    if name == "lamb":
        return Lamb(groups, lr, beta1, beta2, eps)
    if name == "adamweightdecay":  # Google BERT's and the model zoo's: no bias correction
        return AdamW(groups, learning_rate=lr, beta1=beta1, beta2=beta2, eps=eps,
                     bias_correction=False)
    raise UserError(f"unknown optimizer '{name}'; expected one of {', '.join(OPTIMIZERS)}")
