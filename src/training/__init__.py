"""Training: losses, the train step, optimizers, schedules, checkpoints."""
