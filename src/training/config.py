"""Run configs: what every training run needs, and what pretraining adds (seeds' key names)."""
from dataclasses import dataclass, field
from typing import List, Optional

from src.cluster.modelarts import ModelArtsConfig


@dataclass
class TrainConfig(ModelArtsConfig):
    """Optimisation, checkpoints and logging, shared by pretraining and fine-tuning (and the
    model zoo's ModelArts keys)."""

    output_dir: str = "outputs/run"
    batch_size: int = 32
    train_steps: int = 1000
    learning_rate: float = 1e-4
    warmup_steps: int = 0
    lr_decay: str = "polynomial"
    power: float = 1.0
    end_learning_rate: float = 0.0
    optimizer: str = "adamw"
    weight_decay: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-6
    accumulation_steps: int = 1
    max_grad_norm: float = 1.0
    # parameter name patterns (fnmatch) left out of training: no gradient, no update (src/training/freezing.py)
    freeze: List[str] = field(default_factory=list)
    save_checkpoint_steps: int = 1000
    save_checkpoint_num: int = 3
    enable_lossscale: bool = False
    loss_scale_value: float = 65536.0
    scale_factor: float = 2.0
    scale_window: int = 1000
    logging_steps: int = 10
    eval_steps: int = 0
    # keep the checkpoint with the best evaluation value of this metric (PaddleNLP's names)
    metric_for_best_model: Optional[str] = None
    greater_is_better: bool = True
    load_best_model_at_end: bool = False
    device_target: str = "CPU"
    seed: int = 42


@dataclass
class PretrainConfig(TrainConfig):
    """Pretraining: MindRecord from `create_data.py pretrain`, a model config or directory."""

    data_dir: str = ""
    eval_data_dir: Optional[str] = None
    model_config: Optional[str] = None
    model_dir: Optional[str] = None
    eval_batches: int = 20
