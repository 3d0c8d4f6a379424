"""Training: the paper's recipe, gradual training, fine-tuning (kept apart from the pure models)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def train_model(config: Mapping[str, Any], resume: bool = False, show_progress: bool = True) -> Any:
    """Train whatever ``config['task']`` names: ``cls`` (a classifier) or ``seg`` (a segmenter).
    Returns the run's :class:`~lwcnn.training.loop.TrainResult`."""
    if config["task"] == "seg":
        from lwcnn.training.segmentation import train_segmenter

        return train_segmenter(config, resume, show_progress)
    from lwcnn.training.classification import train_classifier

    return train_classifier(config, resume, show_progress)
