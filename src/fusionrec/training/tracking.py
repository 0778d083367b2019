"""Training telemetry in the run folder: ``metrics.jsonl``, TensorBoard events and a
``learning_curve.png``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"
CURVE_FILE = "learning_curve.png"


class RunLog:
    """Appends one JSON line and a set of TensorBoard scalars per epoch."""

    def __init__(self, run_dir: str | Path, history: Sequence[dict] = ()) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # Rewritten from the checkpoint's history so a resumed run never holds lines for epochs
        # the checkpoint does not know about.
        with (self.run_dir / METRICS_FILE).open("w", encoding="utf-8") as handle:
            for record in history:
                handle.write(json.dumps(record) + "\n")
        self._writer = SummaryWriter(log_dir=str(self.run_dir / TENSORBOARD_DIR))

    def log(self, record: dict[str, Any]) -> None:
        with (self.run_dir / METRICS_FILE).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        step = record["epoch"]
        if record["train_loss"] is not None:  # None: epoch 0, validated before any training
            self._writer.add_scalar("train/loss", record["train_loss"], step)
        self._writer.add_scalar("train/lr", record["lr"], step)
        for name, value in record.get("valid", {}).items():
            self._writer.add_scalar(f"valid/{name}", value, step)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def plot_learning_curve(history: Sequence[dict], path: str | Path, monitor: str | None) -> Path:
    """Training loss and the monitored validation metric per epoch, side by side."""
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

    epochs = [r["epoch"] for r in history]
    fig = Figure(figsize=(9, 3.5))
    left, right = fig.subplots(1, 2)
    trained = [r for r in history if r["train_loss"] is not None]  # epoch 0 has no loss
    left.plot([r["epoch"] for r in trained], [r["train_loss"] for r in trained], marker="o")
    left.set(xlabel="epoch", ylabel="training loss", title="training loss")
    values = [r.get("valid", {}).get(monitor) for r in history] if monitor else []
    if values and all(v is not None for v in values):
        right.plot(epochs, values, marker="o", color="tab:orange")
        right.set(xlabel="epoch", ylabel=monitor, title=f"validation {monitor}")
    else:
        right.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return Path(path)
