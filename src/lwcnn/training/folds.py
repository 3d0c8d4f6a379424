"""K-fold cross-validation: K runs, each holding out one fold as its test part, and every test figure
as a mean and spread across folds, because a figure from one small test part can move a lot.

``data.split: {folds: K, val: 0.2}`` (or ``lwcnn train ... --cv K``) trains the K runs into
``OUT/fold-0`` ... ``OUT/fold-{K-1}``; folds are drawn from the data by the split seed (stratified by
class, or balanced in defective images and kept by item where items have several views), so each
run's ``split.json`` is reproducible. A finished fold leaves ``test.json``; running the same command
again skips finished folds and resumes an interrupted one.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lwcnn.data.splits import fold_count
from lwcnn.errors import ConfigError, DataError
from lwcnn.fileio import atomic_write_json

log = logging.getLogger("lwcnn.training")


def fold_config(config: Mapping[str, Any], fold: int, budget_s: float) -> dict[str, Any]:
    """The config of fold ``fold``'s run: that fold held out for testing, in ``OUT/fold-N``."""
    split = dict(config["data"]["split"])
    run = copy.deepcopy(dict(config))
    run["data"]["split"] = {**split, "test_fold": fold}
    run["out"] = str(Path(config["out"]) / f"fold-{fold}")
    run["train"]["budget"] = budget_s
    return run


def train_folds(config: Mapping[str, Any], show_progress: bool = True) -> dict[str, Any]:
    """Train every fold of ``config``'s ``{folds: K}`` split (each with ``train.budget / K``) and
    return and write ``OUT/cv.json``: per-fold test figures and their mean, standard deviation,
    min and max."""
    from lwcnn.training import train_model

    k = count_folds(config["data"]["split"])
    if k is None:
        raise ConfigError("cross-validation needs data.split={folds: K} (or lwcnn train --cv K)")
    if "test_fold" in config["data"]["split"]:
        raise ConfigError("data.split.test_fold trains one fold; leave it out to train all of them")
    out = Path(config["out"])
    per_fold_budget = config["train"]["budget"] / k
    figures: list[dict[str, Any]] = []
    for fold in range(k):
        run = fold_config(config, fold, per_fold_budget)
        done = Path(run["out"]) / "test.json"
        if done.is_file():
            log.info(f"fold {fold + 1}/{k}: finished before, read from {done}")
            figures.append(json.loads(done.read_text(encoding="utf-8")))
            continue
        resume = (Path(run["out"]) / "resume.pt").is_file()
        log.info(f"fold {fold + 1}/{k}: {'resuming' if resume else 'training'} {run['out']}")
        result = train_model(run, resume=resume, show_progress=show_progress, started=time.monotonic())
        test = {key: value for key, value in (result.test or {}).items() if _is_figure(value) or key == "n"}
        atomic_write_json(done, test)
        figures.append(test)
    summary = summarise_folds(figures)
    summary |= {"folds": k, "runs": [str(out / f"fold-{fold}") for fold in range(k)]}
    atomic_write_json(out / "cv.json", summary)
    return summary


def count_folds(split: Mapping[str, Any]) -> int | None:
    """K of a ``{folds: K}`` split or of a ``{folds: FILE}`` one (the file's folds), else None."""
    if not isinstance(split, Mapping) or "folds" not in split:
        return None
    k = fold_count(split)
    if k is not None:
        return k
    path = Path(str(split["folds"]))
    try:
        return len(json.loads(path.read_text(encoding="utf-8"))["folds"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DataError(f"{path}: not a readable folds file ({error})") from None


def summarise_folds(figures: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean, standard deviation (n - 1), min and max of every figure the folds share."""
    shared = [k for k in figures[0] if k != "n" and all(_is_figure(f.get(k)) for f in figures)]
    table = {}
    for key in shared:
        values = [float(f[key]) for f in figures]
        mean = sum(values) / len(values)
        spread = (
            math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
        )
        table[key] = {"mean": mean, "std": spread, "min": min(values), "max": max(values)}
    return {"metrics": table, "per_fold": [dict(f) for f in figures]}


def folds_table(summary: Mapping[str, Any]) -> list[str]:
    """The summary as lines: one per figure, mean +- std and the per-fold values."""
    lines = []
    for key, value in summary["metrics"].items():
        per_fold = " ".join(f"{f[key]:.4f}" for f in summary["per_fold"])
        lines.append(f"{key:>9} {value['mean']:.4f} +- {value['std']:.4f}   folds: {per_fold}")
    return lines


def _is_figure(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
