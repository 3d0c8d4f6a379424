"""Training: the paper's recipe, gradual training, fine-tuning (kept apart from the pure models)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def train_model(
    config: Mapping[str, Any], resume: bool = False, show_progress: bool = True, started: float | None = None
) -> Any:
    """Train whatever ``config['task']`` names: ``cls`` (a classifier) or ``seg`` (a segmenter).
    ``started`` (``time.monotonic``): when ``train.budget`` began to count (default: now).
    Returns the run's :class:`~lwcnn.training.loop.TrainResult`."""
    from lwcnn.errors import ConfigError
    from lwcnn.training.loop import run_training

    if config["task"] == "pretrain":
        raise ConfigError("a pretraining config (task: pretrain) is for lwcnn pretrain, not lwcnn train")
    if config["task"] == "seg":
        from lwcnn.training.segmentation import SegmentationTask as task
    else:
        from lwcnn.training.classification import ClassificationTask as task
    return run_training(task, config, resume, show_progress, started)
