"""Learning-rate schedules: linear warmup, then polynomial or linear decay, one value per step."""
import numpy as np

from src.errors import UserError

DECAYS = ("polynomial", "linear", "constant")


def learning_rates(train_steps: int, learning_rate: float, warmup_steps: int = 0,
                   decay: str = "polynomial", power: float = 1.0,
                   end_learning_rate: float = 0.0) -> np.ndarray:
    """lr[s] for s in 0..train_steps-1 (the optimizer indexes it by its global step).

    Warmup rises linearly to learning_rate over warmup_steps; then polynomial decay goes
    (lr - end) * (1 - progress)^power + end, linear being power 1 down to 0.
    """
    if decay not in DECAYS:
        raise UserError(f"unknown lr_decay '{decay}'; expected one of {', '.join(DECAYS)}")
    steps = np.arange(train_steps, dtype=np.float64)
    decay_steps = max(train_steps - warmup_steps, 1)
    progress = np.clip((steps - warmup_steps) / decay_steps, 0.0, 1.0)
    if decay == "constant":
        lrs = np.full(train_steps, learning_rate)
    elif decay == "linear":
        lrs = learning_rate * (1.0 - progress)
    else:
        lrs = (learning_rate - end_learning_rate) * (1.0 - progress) ** power + end_learning_rate
    if warmup_steps > 0:
        warm = learning_rate * (steps + 1) / warmup_steps
        lrs = np.where(steps < warmup_steps, warm, lrs)
    return lrs.astype(np.float32)
