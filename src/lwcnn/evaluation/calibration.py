"""Calibrating a trained segmenter's decision: the pixel threshold that lets at most a target share
of the defective images of a part of its split pass as OK while passing as many defect-free ones as
possible, stored in its model card, with its test figures measured again at it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lwcnn.errors import ConfigError
from lwcnn.evaluation.segmenter import (
    MAX_FALSE_ALARMS,
    area_scores,
    calibrate_threshold,
    calibration_warnings,
    escape_tradeoff,
    model_part_images,
    record_test_figures,
)
from lwcnn.runtime.engine import Inspector


def calibrate_model(
    weights: str | Path, data: str | Path, part: str = "val", escape_rate: float = 0.0,
    min_area: int | None = None, store: bool = True, show_progress: bool = False,
    force: bool = False, plot: str | Path | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Choose and (with ``store``) record the threshold of the segmenter ``weights`` on ``part`` of
    its split in ``data``; returns what was chosen (threshold, TPR, TNR, the false-alarm rate it
    costs), the whole trade-off (``tradeoff``: escape rate against false alarms, also drawn to
    ``plot``), ``warnings`` about what so few images cannot promise, where it was written and the test
    figures at the new threshold (when the model has a test part and it was not the one calibrated
    on). A threshold that would reject more than half of the good parts is not stored unless
    ``force``: ``stored`` says whether it was."""
    from lwcnn.checkpoints import read_metadata, update_metadata
    from lwcnn.weights import BUNDLED_DIR, resolve_weights

    meta = read_metadata(weights)
    if meta["task"] != "seg":
        raise ConfigError(f"{weights}: a {meta['task']} model; calibrate sets a segmenter's threshold")
    if resolve_weights(weights).parent == BUNDLED_DIR:
        raise ConfigError(f"{weights}: calibrate a trained model file or run folder, not a bundled model")
    min_area = min_area if min_area is not None else int(meta.get("min_area") or 1)
    if min_area < 1:
        raise ConfigError(f"--min-area must be at least 1 pixel, got {min_area}")
    inspector = Inspector(weights, min_area=min_area)
    scores, truth = area_scores(inspector, model_part_images(meta, data, part), min_area, show_progress)
    result = {"weights": str(weights), "split": part, "min_area": min_area,
              **calibrate_threshold(scores, truth, escape_rate)}  # fmt: skip
    false_alarms = None if result["tnr"] is None else 1.0 - result["tnr"]
    result["false_alarm_rate"] = false_alarms
    result["tradeoff"] = escape_tradeoff(scores, truth)
    good = result["n"] - result["defective"]
    result["warnings"] = calibration_warnings(result["defective"], good, escape_rate, false_alarms)
    if plot is not None:
        from lwcnn.evaluation.plots import plot_tradeoff

        result["plot"] = str(plot_tradeoff(result["tradeoff"], plot, escape_rate, part))
    useless = false_alarms is not None and false_alarms > MAX_FALSE_ALARMS
    result["stored"] = store and (force or not useless)
    if not result["stored"]:
        return result
    calibration = {k: result[k] for k in ("split", "escape_rate_target", "n", "defective", "tpr", "tnr")}
    fields = {"threshold": result["threshold"], "min_area": min_area, "calibration": calibration}
    result["written"] = str(update_metadata(weights, fields))
    if part != "test" and meta["split"]["parts"].get("test"):
        report, _, _ = record_test_figures(weights, model_part_images(meta, data, "test"))
        result["test"] = {k: report[k] for k in ("n", "tpr", "tnr", "macc", "ap", "iou")}
    return result
