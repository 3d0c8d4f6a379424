"""Checking a reduced precision against fp32 on a model's own images, so that ``--backend auto`` may
run it: the model's export runs in ONNX Runtime fp32 (the reference) and in the candidate engine
and precision (OpenVINO bf16) over a part of its split; a segmenter's threshold is calibrated again
in the candidate precision (the same rule and target as its fp32 calibration), and every image's
decision is compared. The record, stored in the card under ``precisions``, says whether all agree.

The candidate runs in a child process (``python -m lwcnn.evaluation.precision``): the caller has
torch loaded (it reads the training card), and OpenVINO never shares a process with torch.
"""

from __future__ import annotations

import datetime as _dt
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lwcnn.errors import ConfigError, LwcnnError
from lwcnn.evaluation.segmenter import calibrate_threshold, min_area_score
from lwcnn.runtime.engine import Inspector

#: Images named in a record as having decided differently (the count is always complete).
DIFFER_LISTED = 20


def image_scores(
    model: str | Path, engine: str, precision: str, paths: Sequence[str | Path], min_area: int = 1
) -> list[float] | list[int]:
    """What decides each image in ``engine`` / ``precision``: a segmenter's score for a
    ``min_area`` decision (its ``min_area``-th highest pixel probability: defective exactly when it
    exceeds the threshold), a classifier's predicted class index."""
    from lwcnn.data.images import read_image

    inspector = Inspector(model, backend=engine, precision=precision, batch_size=16)
    channels = inspector.preprocessing.channels
    if inspector.task == "cls":
        classes: list[int] = []
        for first in range(0, len(paths), 64):
            images = [read_image(path, channels) for path in paths[first : first + 64]]
            classes.extend(int(c) for c in inspector.class_probabilities(images).argmax(axis=1))
        return classes
    return [
        min_area_score(inspector.defect_probability(read_image(path, channels)), min_area) for path in paths
    ]


def scores_in_child(
    model: str | Path, engine: str, precision: str, paths: Sequence[str | Path], min_area: int = 1
) -> list[float] | list[int]:
    """:func:`image_scores` computed in a child process (away from torch)."""
    request = json.dumps({"model": str(model), "engine": engine, "precision": precision,
                          "paths": [str(p) for p in paths], "min_area": min_area})  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "lwcnn.evaluation.precision"], input=request, capture_output=True, text=True
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        problem = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise LwcnnError(f"{model}: {engine} {precision} could not score the images ({problem})")
    return json.loads(lines[-1])["scores"]


def compare_decisions(
    names: Sequence[str],
    reference: Sequence[float] | Sequence[int],
    candidate: Sequence[float] | Sequence[int],
    task: str,
    thresholds: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """The record of one check: ``n``, ``agree`` (every decision the same), ``differ`` (the first
    :data:`DIFFER_LISTED` images that were not; ``differ_count`` all of them) and, for a segmenter
    decided at ``thresholds`` (reference's, candidate's), the largest score difference."""
    if task == "seg":
        if thresholds is None:
            raise ConfigError("a segmenter's decisions need its two thresholds")
        ref, cand = np.asarray(reference, float), np.asarray(candidate, float)
        differs = (ref > thresholds[0]) != (cand > thresholds[1])
        extra: dict[str, Any] = {
            "threshold": thresholds[1],
            "max_score_difference": float(np.abs(ref - cand).max()) if len(ref) else 0.0,
        }
    else:
        differs = np.asarray(reference) != np.asarray(candidate)
        extra = {}
    listed = [names[i] for i in np.flatnonzero(differs)]
    return {"n": len(names), "agree": not listed, "differ_count": len(listed),
            "differ": listed[:DIFFER_LISTED], **extra}  # fmt: skip


def check_precision(
    weights: str | Path, data: str | Path, part: str = "val", precision: str = "bf16",
    engine: str = "openvino", store: bool = True, show_progress: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Check ``precision`` in ``engine`` against ONNX Runtime fp32 on ``part`` of a model's split in
    ``data`` and (with ``store``, trained models only) record it in its card under ``precisions``.
    A segmenter calibrated in fp32 gets a threshold calibrated the same way in ``precision`` (its
    calibration's split and target), and each precision decides at its own threshold."""
    from lwcnn.checkpoints import read_metadata, update_metadata
    from lwcnn.runtime.engine import bundled_onnx_file, exported_file
    from lwcnn.runtime.engine_choice import cpu_name

    bundled = bundled_onnx_file(str(weights))
    if store and bundled is not None:
        raise ConfigError(f"{weights}: check a trained model file or run folder, not a bundled model")
    meta = read_metadata(weights)
    onnx_file = bundled or exported_file(str(weights), None)
    calibration = meta.get("calibration") if meta["task"] == "seg" else None
    names, paths, truth = _part_images(meta, data, part, with_truth=bool(calibration))
    min_area = int(meta.get("min_area") or 1)
    if show_progress:
        print(f"scoring {len(paths)} {part} images: onnxruntime fp32, {engine} {precision}", file=sys.stderr)
    reference = image_scores(onnx_file, "onnxruntime", "fp32", paths, min_area)
    candidate = scores_in_child(onnx_file, engine, precision, paths, min_area)
    thresholds = None
    if meta["task"] == "seg":
        fp32_threshold = float(meta.get("threshold") or 0.5)
        thresholds = (fp32_threshold, fp32_threshold)
        if calibration:  # the same rule, split and target as the fp32 threshold, in this precision
            scores, calibration_truth = candidate, truth
            if calibration["split"] != part:
                _, calibration_paths, calibration_truth = _part_images(
                    meta, data, calibration["split"], with_truth=True
                )
                scores = scores_in_child(onnx_file, engine, precision, calibration_paths, min_area)
            own = calibrate_threshold(scores, calibration_truth, calibration["escape_rate_target"])
            thresholds = (fp32_threshold, own["threshold"])
    record = {"engine": engine, "split": part,
              **compare_decisions(names, reference, candidate, meta["task"], thresholds),
              "cpu": cpu_name(), "checked": _dt.date.today().isoformat()}  # fmt: skip
    if store:
        checks = dict(meta.get("precisions") or {})
        checks[precision] = record
        return {
            "precision": precision,
            **record,
            "written": str(update_metadata(weights, {"precisions": checks})),
        }
    return {"precision": precision, **record}


def _part_images(
    meta: dict[str, Any], data: str | Path, part: str, with_truth: bool = False
) -> tuple[list[str], list[Path], list[bool]]:
    """The names and paths of ``part`` of a model's split in ``data``, and with ``with_truth`` a
    segmenter's truth (defective or not: each mask read, so only where a calibration needs it)."""
    from lwcnn.data.splits import Split

    layout = (meta.get("data") or {}).get("layout", "auto")
    if meta["task"] == "seg":
        from lwcnn.data.masked_images import read_sample
        from lwcnn.evaluation.segmenter import model_part_images

        images = model_part_images(meta, data, part)
        truth = [bool(read_sample(images, i)[1].any()) for i in range(len(images))] if with_truth else []
        return [p.as_posix() for p in images.paths], [images.root / p for p in images.paths], truth
    from lwcnn.data.classification import scan_classification

    labelled = scan_classification(data, layout)
    if part != "all":
        labelled = labelled.subset(Split.from_dict(meta["split"]).indices(labelled, part))
    return [p.as_posix() for p in labelled.paths], [labelled.root / p for p in labelled.paths], []


def _child() -> int:
    """The child of :func:`scores_in_child`: a JSON request on stdin, the scores on stdout, or one
    line on stderr and status 2 (a CPU without the precision, a model the engine cannot read)."""
    asked = json.loads(sys.stdin.read())
    try:
        found = image_scores(
            asked["model"], asked["engine"], asked["precision"], asked["paths"], asked["min_area"]
        )
    except LwcnnError as error:
        print(error, file=sys.stderr)
        return 2
    print(json.dumps({"scores": found}))
    return 0


if __name__ == "__main__":
    sys.exit(_child())
