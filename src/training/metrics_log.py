"""metrics.jsonl (one JSON line per logging step or evaluation) and its PNG plot."""
import json
import os
from typing import Dict, List

LOG_FILE = "metrics.jsonl"
PLOT_FILE = "metrics.png"


class MetricsLog:
    """Appends to output_dir/metrics.jsonl; a resumed run first drops lines past its step."""

    def __init__(self, output_dir: str, enabled: bool = True, after_step: int = 0):
        self.path = os.path.join(output_dir, LOG_FILE)
        self.enabled = enabled
        if enabled and os.path.isfile(self.path):
            kept = [r for r in self.read() if r.get("step", 0) <= after_step]
            tmp = self.path + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                f.writelines(json.dumps(r) + "\n" for r in kept)
            os.replace(tmp, self.path)

    def write(self, record: Dict) -> None:
        if self.enabled:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    def read(self) -> List[Dict]:
        with open(self.path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def plot(self) -> None:
        """Loss and learning rate over steps, side by side."""
        if not self.enabled or not os.path.isfile(self.path):
            return
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        rows = [r for r in self.read() if "loss" in r]
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
        left.plot([r["step"] for r in rows], [r["loss"] for r in rows])
        left.set(xlabel="step", ylabel="loss", title="training loss")
        right.plot([r["step"] for r in rows], [r["lr"] for r in rows], color="tab:orange")
        right.set(xlabel="step", ylabel="learning rate", title="learning rate")
        fig.tight_layout()
        tmp = os.path.join(os.path.dirname(self.path), ".tmp-" + PLOT_FILE)
        fig.savefig(tmp, format="png")
        plt.close(fig)
        os.replace(tmp, os.path.join(os.path.dirname(self.path), PLOT_FILE))
