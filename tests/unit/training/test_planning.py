"""``lwcnn train DATA``: the plan from the data's statistics, the budget, the run's config that
reproduces it, cross-validation, and calibration that says what its threshold costs."""

from __future__ import annotations

import csv
import json
import time
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from lwcnn.cli import main
from lwcnn.config import load_config
from lwcnn.data.statistics import DatasetStatistics
from lwcnn.errors import ConfigError
from lwcnn.evaluation.segmenter import calibration_warnings, escape_tradeoff
from lwcnn.training.budget import (
    VALIDATION_SHARE,
    BudgetFit,
    Deadline,
    EpochCosts,
    choose_precision,
    epochs_cost,
    fit_epochs,
    fit_validation,
    keep_full_size_epochs,
    refit_epochs,
)
from lwcnn.training.folds import summarise_folds
from lwcnn.training.plan import parse_budget, plan_training
from lwcnn.training.schedule import run_schedule
from tests.synthetic import make_class_folders, make_masked_folder

CONFIGS = Path(__file__).resolve().parents[3] / "configs"

SEG = DatasetStatistics(
    task="seg", layout="masks", images=300, channels=1, median_size=(480, 320), max_size=(640, 400),
    min_size=(100, 100), aspect_range=(0.6, 0.8), class_counts={"defective": 120, "defect-free": 180},
    defect_area=(0.001, 0.01), defect_extent=(20.0, 120.0), defect_width=(2.0, 3.0),
)  # fmt: skip


def _metrics(run: Path) -> list[dict[str, str]]:
    """The rows of a run's metrics.csv (an empty cell: not measured that epoch)."""
    with open(run / "metrics.csv", newline="") as file:
        return list(csv.DictReader(file))


def test_budget_durations():
    assert parse_budget("15m") == 900 and parse_budget("90s") == 90 and parse_budget("1h30m") == 5400
    assert parse_budget("2") == 120 and parse_budget(1.5) == 90
    for bad in ("fast", "0m", "-3m", ""):
        with pytest.raises(ConfigError, match="--budget"):
            parse_budget(bad)


def test_the_plan_is_deterministic_and_a_complete_checked_config():
    first = plan_training(SEG, "DATA", "runs/x", budget_s=600)
    second = plan_training(SEG, "DATA", "runs/x", budget_s=600)
    assert first.config == second.config and first.reasons == second.reasons
    config = first.config
    assert config["train"]["budget"] == 600 and config["data"]["root"] == "DATA"
    assert config["data"]["split"] == {"train": 0.6, "val": 0.2, "test": 0.2}
    assert load_config(None, [], defaults=config) == config  # every key known, every value in range


def test_thin_defects_get_the_stride_4_shortcut_and_wide_ones_the_paper_s():
    thin = plan_training(SEG, "D", "o").config
    wide = plan_training(replace(SEG, defect_width=(12.0, 30.0)), "D", "o").config
    assert thin["model"]["shortcut_stride"] == 4 and wide["model"]["shortcut_stride"] == 8


def test_large_images_are_scaled_but_thin_defects_stay_visible():
    large = replace(SEG, median_size=(1260, 500), max_size=(1270, 510), defect_width=(6.0, 12.0))
    config = plan_training(large, "D", "o").config
    assert config["data"]["scale"] == 0.5  # 1260 px -> 630, and 6 px defects stay 3 px
    hairline = replace(large, defect_width=(1.5, 2.0))
    assert plan_training(hairline, "D", "o").config["data"]["scale"] == 1.0
    h, w = config["data"]["input_size"]
    assert h >= 1270 * 0.5 and w >= 510 * 0.5 and h % 32 == 0 and w % 32 == 0


def test_classifier_plan_keeps_the_class_prior_and_the_data_s_own_split():
    stats = replace(
        SEG, task="cls", layout="folders", class_counts={"good": 900, "crack": 40, "stain": 60},
        median_size=(200, 300), defect_width=None,
    )  # fmt: skip
    config = plan_training(stats, "D", "o").config
    assert config["augment"]["per_class"] == 0  # no balanced sampling: the decision prior stays
    assert config["data"]["input_size"] == [168, 256]  # aspect kept, long side 256
    assert not any(t["name"] == "RandomRotate90" for t in config["augment"]["transforms"])  # not square
    assert config["model"]["pool"] == "avgmax"  # the one command's classifier pools by mean and highest
    # small batches: many updates fit the budget (at least 8 an epoch of the 60% that trains)
    for images in (40, 1000, 20000):
        batch = plan_training(replace(stats, images=images), "D", "o").config["train"]["batch_size"]
        assert 8 <= batch <= 32 and (batch == 8 or images * 0.6 / batch >= 8), (images, batch)
    # both tasks fall along a cosine to zero (the configs keep the paper's exponential decay)
    assert config["train"]["lr_schedule"] == plan_training(SEG, "D", "o").config["train"]["lr_schedule"]
    assert config["train"]["lr_schedule"] == "cosine"
    own = plan_training(SEG, "D", "o", own_split=True).config
    assert own["data"]["split"] == {"val": 0.2}


def test_epochs_fit_the_budget_and_bf16_needs_a_real_gain():
    assert fit_epochs(100, 10, 10, 0.5, 1.0, 5.0, 0.0) == 13  # (95 - 10 - 5) / 6
    assert fit_epochs(10, 20, 10, 0.5, 1.0, 5.0) == 1  # at least one epoch
    assert choose_precision(1.0, None) == "fp32" and choose_precision(1.0, 0.95) == "fp32"
    assert choose_precision(1.0, 0.8) == "bf16"
    deadline = Deadline(time.monotonic() + 5)
    assert deadline.allows_another()
    deadline.record(10.0)
    assert not deadline.allows_another()


def test_costly_validation_runs_every_few_epochs_but_leaves_enough_to_choose_from():
    # one validation as long as an epoch's training: every 9th epoch keeps it at a tenth
    epochs, every = fit_validation(1000, 0, 10, 1.0, 10.0, 0.0, 0.0)
    assert every == 9 and epochs == 85  # 950 s / (10 + 10 / 9)
    assert 10.0 / every / (10.0 + 10.0 / every) <= VALIDATION_SHARE
    # cheap validation: every epoch
    assert fit_validation(1000, 0, 10, 1.0, 0.5, 0.0, 0.0) == (90, 1)
    # a short run: fewer epochs apart, so that at least four validated epochs remain
    assert fit_validation(120, 0, 10, 1.0, 10.0, 0.0, 0.0) == (5, 1)
    epochs, every = fit_validation(300, 0, 10, 1.0, 10.0, 0.0, 0.0)
    assert epochs // every >= 4 and 1 < every < 9
    # only the last 70% of a segmenter's epochs can be validated at all
    epochs, every = fit_validation(1000, 0, 10, 1.0, 10.0, 0.0, 0.0, validated_share=0.7)
    assert epochs * 0.7 / every >= 4


def test_validate_every_k_epochs_validates_those_and_the_last_and_chooses_among_them(tmp_path):
    data = make_class_folders(tmp_path / "parts", per_class=10, size=32)
    run = tmp_path / "run"
    overrides = [
        "model.name=lw@0.25",
        "train.epochs=5",
        "train.validate_every=2",
        "train.low_res=0",
        "--json",
    ]
    assert main(["train", str(data), "--out", str(run), *overrides]) == 0
    validated = [int(row["epoch"]) for row in _metrics(run) if row["val_acc"]]
    assert validated == [2, 4, 5]
    assert json.loads((run / "best.json").read_text())["metrics"]["epoch"] in validated


def test_low_resolution_epochs_come_first_and_are_not_validated(tmp_path):
    from lwcnn.training.classification import ClassificationTask

    task = ClassificationTask(low_res=0.5, low_res_scale=0.5)
    assert [task.input_scale(e, 5) for e in range(5)] == [0.5, 0.5, 1.0, 1.0, 1.0]
    assert task.input_scale(0, 1) == 1.0  # a one-epoch run trains at full size
    assert task.validated_share({}) == 0.5  # what the budget probe counts validation for
    data = make_class_folders(tmp_path / "parts", per_class=10, size=32)
    run = tmp_path / "run"
    overrides = ["model.name=lw@0.25", "train.epochs=4", "train.low_res=0.5", "--json"]
    assert main(["train", str(data), "--out", str(run), *overrides]) == 0
    validated = [int(row["epoch"]) for row in _metrics(run) if row["val_acc"]]
    assert validated == [3, 4]
    assert json.loads((run / "best.json").read_text())["metrics"]["epoch"] in validated


def test_the_deadline_judges_by_the_last_epoch_when_epochs_grow_costlier():
    deadline = Deadline(time.monotonic() + 12)
    for seconds in (1.0, 1.0, 1.0, 13.0):  # the mean (4 s) fits, the last (13 s) does not
        deadline.record(seconds)
    assert not deadline.allows_another()
    assert Deadline(time.monotonic() + 12).allows_another(pending=5.0)


def test_reduced_epochs_give_way_when_the_full_size_ones_would_not_fit():
    fit = BudgetFit(100, 10, 10, 1.0, 0.0, 0.0, 0.0, "fp32", 0.0, 1, 8, full_epoch_s=10.0, scaled_epoch_s=4.0)
    deadline = Deadline(time.monotonic() + 50)
    assert keep_full_size_epochs(deadline, fit, 3)  # 4 + 3 x 10 s fit in 50
    assert not keep_full_size_epochs(deadline, fit, 5)  # 4 + 50 do not
    deadline.record(12.0)  # the first epoch pays one-off costs (a fork, the cache): no slower machine
    assert keep_full_size_epochs(deadline, fit, 3)
    deadline.record(8.0)  # later reduced epochs ran twice as long as predicted: full ones will too
    assert not keep_full_size_epochs(deadline, fit, 3)  # 8 + 3 x 20 s
    assert keep_full_size_epochs(deadline, fit, 1)  # 8 + 20 s
    assert keep_full_size_epochs(Deadline(None), fit, 100)  # no budget: the plan holds


def test_a_slowed_run_skips_its_last_reduced_epochs_and_ends_validated(tmp_path, monkeypatch, capsys):
    import lwcnn.training.loop as loop

    planned = loop.train_epoch

    def slow_when_reduced(*args, **kwargs):  # a busy machine: the reduced epochs take 3 s more
        if args[-1] != 1.0:
            time.sleep(3.0)
        return planned(*args, **kwargs)

    monkeypatch.setattr(loop, "train_epoch", slow_when_reduced)
    data = make_class_folders(tmp_path / "parts", per_class=10, size=32)
    run = tmp_path / "run"
    overrides = ["model.name=lw@0.25", "train.low_res=0.6", "--json"]
    assert main(["train", str(data), "--budget", "25s", "--out", str(run), *overrides]) == 0
    rows = _metrics(run)
    assert "reduced epochs left: another would leave too little" in capsys.readouterr().err
    assert rows[-1]["val_acc"]  # the run ended at full size, on a validated epoch
    # the skipped epochs left no rows, and their steps were counted: each epoch's step count and
    # learning rate are those the plan gave it (the full-size epochs keep their low final rates)
    epochs = [int(row["epoch"]) for row in rows]
    assert epochs != list(range(1, len(rows) + 1)), epochs
    steps = int(rows[0]["step"])
    assert all(int(row["step"]) == steps * int(row["epoch"]) for row in rows), rows
    validated = [int(row["epoch"]) for row in rows if row["val_acc"]]
    assert json.loads((run / "best.json").read_text())["metrics"]["epoch"] in validated


def test_the_epochs_left_are_refitted_by_their_own_cost():
    # validated every 2nd epoch and always the last: epochs 5..8 (indices 4..7) validate 6, 8
    assert epochs_cost(4, 4, 10.0, 3.0, 2) == 40 + 2 * 3.0
    assert epochs_cost(3, 4, 10.0, 3.0, 2) == 30 + 2 * 3.0  # 5, 6 and the last, 7
    assert epochs_cost(1, 0, 10.0, 3.0, 5) == 13.0
    # as planned: 5 epochs of 10 s + 5 validations of 2 s = 60 s in 65 s left
    assert refit_epochs(65.0, 10, 5, 10.0, 2.0, 1) == 5
    # a few percent over: the plan stands (60 s in 58 s left, within 5%); more: as many as fit
    assert refit_epochs(58.0, 10, 5, 10.0, 2.0, 1) == 5
    assert refit_epochs(40.0, 10, 5, 10.0, 2.0, 1) == 3
    assert refit_epochs(5.0, 10, 5, 10.0, 2.0, 1) == 1
    # faster: more, but only while one epoch's time stays spare (84 s fit 7 epochs, 7 + 10 s do not)
    assert refit_epochs(84.0, 10, 5, 10.0, 2.0, 1) == 6
    assert refit_epochs(96.0, 10, 5, 10.0, 2.0, 1) == 7
    # ... or 5% of the time left, where that is more: 1000 s left fit 83 epochs of 12 s
    assert refit_epochs(1000.0, 0, 50, 10.0, 2.0, 1) == 79  # 79 x 12 = 948 <= 950
    # a run that had to shrink its plan does not grow it again (noise would swing it back and forth)
    assert refit_epochs(96.0, 10, 5, 10.0, 2.0, 1, may_grow=False) == 5
    assert refit_epochs(40.0, 10, 5, 10.0, 2.0, 1, may_grow=False) == 3


def test_once_re_planning_the_deadline_judges_the_next_epoch_as_the_plan_does():
    costs = EpochCosts(validation_s=5.0)
    for training_s in (8.0, 9.0, 8.5):
        assert costs.next_epoch_s(10, 20, 4) is None  # too few settled epochs: the deadline's own rule
        costs.record(training_s, None)
    assert costs.next_epoch_s(10, 20, 4) == 8.5  # not validated
    assert costs.next_epoch_s(11, 20, 4) == 8.5 + 5.0  # every 4th, the probe's validation so far
    costs.record(8.5, 2.0)
    assert costs.next_epoch_s(19, 20, 4) == 8.5 + 2.0  # the last, with the measured validation
    deadline = Deadline(time.monotonic() + 10.0)
    for seconds in (8.0, 8.5, 12.0):  # a slow validated epoch last: by it, another does not fit
        deadline.record(seconds)
    assert not deadline.allows_another()
    assert deadline.allows_another(next_s=8.5) and not deadline.allows_another(next_s=10.5)


@pytest.mark.parametrize("slower", [False, True], ids=["probe-too-slow", "run-slower-than-probed"])
def test_a_run_replans_its_epochs_by_their_cost_and_its_config_reproduces_the_schedule(
    tmp_path, monkeypatch, capsys, slower
):
    import lwcnn.training.loop as loop

    probe, planned = loop._probe_steps, loop.train_epoch

    def misjudged(*args, **kwargs):  # the probe's steps were slow, the run's are not
        precision, step_s, startup, parts = probe(*args, **kwargs)
        return precision, step_s * 3, startup, parts

    def busy(*args, **kwargs):  # a busy machine: the full-size epochs take 0.4 s more than probed
        if args[-1] == 1.0:
            time.sleep(0.4)
        return planned(*args, **kwargs)

    if slower:
        monkeypatch.setattr(loop, "train_epoch", busy)
    else:
        monkeypatch.setattr(loop, "_probe_steps", misjudged)
    data = make_class_folders(tmp_path / "parts", per_class=15, size=32)
    run = tmp_path / "run"
    started = time.monotonic()
    assert main(["train", str(data), "--budget", "25s", "--out", str(run), "model.name=lw@0.25"]) == 0
    took = time.monotonic() - started
    assert took <= 1.1 * 25, took
    fit = json.loads((run / "budget.json").read_text())
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert fit["replans"] and saved["train"]["epochs"] == fit["replans"][-1]["epochs"]
    assert saved["train"]["stretch"]["planned_epochs"] == fit["epochs"]
    assert "re-planned by what the last ones cost" in capsys.readouterr().err
    rows = _metrics(run)
    if slower:  # the plan was long: fewer epochs, and those left are not cut by the deadline
        assert saved["train"]["epochs"] < fit["epochs"]
    else:  # the plan was short: more epochs, and the budget is used
        assert saved["train"]["epochs"] > fit["epochs"] and took >= 0.75 * 25, (took, fit)
    # the schedule the config gives is the one the run followed, and the run reached its low end
    schedule = run_schedule(load_config(run / "config.yaml")["train"], fit["steps_per_epoch"])
    for row in rows:
        assert float(row["lr"]) == pytest.approx(schedule.lr_at(int(row["step"])), rel=1e-4), row
    assert schedule.planned_step(int(rows[-1]["step"])) >= 0.85 * schedule.total_steps
    assert rows[-1]["val_acc"]


def test_one_command_trains_within_its_budget_and_its_config_reproduces_the_plan(tmp_path, capsys):
    data = make_class_folders(tmp_path / "parts", per_class=15, size=32)
    run = tmp_path / "run"
    started = time.monotonic()
    assert main(["train", str(data), "--budget", "25s", "--out", str(run), "model.name=lw@0.25"]) == 0
    took = time.monotonic() - started
    assert 0.5 * 25 <= took <= 1.1 * 25, took
    err = capsys.readouterr().err
    assert "folders layout" in err and "budget 0.4 min:" in err
    # the probe builds models too, but how the model starts is said once, by the run
    assert err.count("no pretrained backbone is bundled for lw@0.25") == 1, err
    saved = yaml.safe_load((run / "config.yaml").read_text())
    fit = json.loads((run / "budget.json").read_text())
    # the epochs the probe planned, or those its own epochs' times re-planned on the way
    final = fit["replans"][-1]["epochs"] if fit["replans"] else fit["epochs"]
    assert saved["train"]["epochs"] == final >= 1 and saved["train"]["budget"] == 0
    assert saved["train"]["precision"] in ("fp32", "bf16") and saved["model"]["name"] == "lw@0.25"
    plan = json.loads((run / "plan.json").read_text())
    assert plan["layout"] == "folders" and plan["statistics"]["class_counts"]["checker"] == 15
    rerun = load_config(run / "config.yaml", [f"out={tmp_path / 'again'}"])
    assert rerun["augment"] == saved["augment"] and rerun["data"]["split"] == saved["data"]["split"]


def test_one_command_takes_another_input_size_from_the_command_line(tmp_path):
    data = make_class_folders(tmp_path / "parts", per_class=6, size=32)
    run = tmp_path / "run"
    args = ["train", str(data), "--out", str(run), "train.epochs=1", "model.name=lw@0.25"]
    assert main([*args, "data.input_size=[48,48]"]) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["data"]["input_size"] == [48, 48]
    # the plan's random crop names no size of its own: it follows the input size
    crops = [t for t in saved["augment"]["transforms"] if t["name"] == "RandomResizedCrop"]
    assert len(crops) == 1 and "size" not in crops[0]


def test_budget_also_fits_a_config_s_epochs(tmp_path):
    data = make_class_folders(tmp_path / "parts", per_class=10, size=32)
    run = tmp_path / "run"
    args = [
        "train",
        "--config",
        str(CONFIGS / "folders.yaml"),
        f"data.root={data}",
        f"out={run}",
        "--budget",
        "15s",
    ]
    assert main([*args, "model.name=lw@0.25", "data.input_size=[32,32]", "--json"]) == 0
    fit = json.loads((run / "budget.json").read_text())
    final = fit["replans"][-1]["epochs"] if fit["replans"] else fit["epochs"]
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert fit["budget_s"] == 15 and saved["train"]["epochs"] == final


def test_cross_validation_trains_k_folds_and_reports_their_spread(tmp_path, capsys):
    data = make_class_folders(tmp_path / "parts", per_class=9, size=32)
    out = tmp_path / "cv"
    args = ["train", str(data), "--cv", "3", "--out", str(out), "train.epochs=1", "model.name=lw@0.25"]
    assert main([*args, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["folds"] == 3 and len(summary["per_fold"]) == 3
    accuracies = [fold["accuracy"] for fold in summary["per_fold"]]
    assert summary["metrics"]["accuracy"]["mean"] == pytest.approx(sum(accuracies) / 3)
    for fold in range(3):
        split = json.loads((out / f"fold-{fold}" / "split.json").read_text())
        assert split["sizes"]["test_fold"] == fold and len(split["parts"]["test"]) == 9
    stamp = (out / "fold-0" / "best.safetensors").stat().st_mtime_ns
    assert main(args) == 0  # finished folds are read back, not trained again
    assert (out / "fold-0" / "best.safetensors").stat().st_mtime_ns == stamp
    assert "+-" in capsys.readouterr().out


def test_fold_summary_mean_and_spread():
    summary = summarise_folds([{"ap": 0.9, "n": 10}, {"ap": 1.0, "n": 10}, {"ap": 0.8, "n": 9}])
    assert summary["metrics"]["ap"]["mean"] == pytest.approx(0.9)
    assert summary["metrics"]["ap"]["std"] == pytest.approx(0.1)
    assert summary["metrics"]["ap"]["min"] == 0.8 and "n" not in summary["metrics"]


def test_calibration_tradeoff_and_its_warnings_on_a_constructed_validation_part():
    scores = [0.9, 0.8, 0.3, 0.7, 0.6, 0.2, 0.1]  # defective: 0.9, 0.8, 0.3; good: the rest
    truth = [True, True, True, False, False, False, False]
    points = escape_tradeoff(scores, truth)
    assert [p["escape_rate"] for p in points] == pytest.approx([0, 1 / 3, 2 / 3])
    # catching 0.3 flags the good 0.7 and 0.6: half of the good images; letting it pass flags none
    assert [p["false_alarm_rate"] for p in points] == pytest.approx([0.5, 0.0, 0.0])
    warnings = calibration_warnings(defective=3, good=4, escape_rate=0.0, false_alarm_rate=0.75)
    assert any("only 3 defective images" in w and "100%" in w for w in warnings)
    assert any("only 4 defect-free" in w for w in warnings)
    assert any("75%" in w and "most good parts" in w for w in warnings)
    assert calibration_warnings(defective=400, good=400, escape_rate=0.01, false_alarm_rate=0.02) == []


def test_calibrate_refuses_a_threshold_that_rejects_most_good_parts(tmp_path, capsys):
    data = make_masked_folder(tmp_path / "parts", count=20, size=(48, 64))
    run = tmp_path / "run"
    # an untrained model (seeded, lr 0) cannot tell the images apart: catching every defect rejects
    # most good parts
    assert main(["train", str(data), "--out", str(run), "train.epochs=1", "train.lr=0", "--json"]) == 0
    before = json.loads((run / "best.json").read_text())["threshold"]
    code = main(["calibrate", "--weights", str(run), "--data", str(data)])
    captured = capsys.readouterr()
    assert code == 1 and "not stored" in captured.err and "most good parts" in captured.err
    assert json.loads((run / "best.json").read_text())["threshold"] == before  # nothing written
    assert main(["calibrate", "--weights", str(run), "--data", str(data), "--force"]) == 0
    assert json.loads((run / "best.json").read_text())["threshold"] != before
    assert (run / "tradeoff.png").stat().st_size > 1000
    assert "trade-off" in captured.out


def test_shrinking_crops_never_makes_a_side_larger_than_planned():
    from types import SimpleNamespace

    from lwcnn.training.segmentation import SegmentationTask

    task = SegmentationTask.from_config(load_config(None, ["task=seg"]))
    data = SimpleNamespace(train=SimpleNamespace(crop=None))
    config = {"data": {"crop": [96, 384], "input_size": [96, 384]}}
    assert task.shrink_crops(config, data, 0.25)  # type: ignore[arg-type]
    assert config["data"]["crop"] == [96, 192] and data.train.crop == (96, 192)
    config = {"data": {"crop": [96, 128], "input_size": [96, 128]}}
    assert not task.shrink_crops(config, data, 0.1)  # type: ignore[arg-type]
    assert config["data"]["crop"] == [96, 128]


def test_a_budget_too_short_for_the_planned_crops_shrinks_them(tmp_path):
    data = make_masked_folder(tmp_path / "parts", count=16, size=(256, 256))
    run = tmp_path / "run"
    overrides = ["data.crop=[256,256]", "train.min_steps=100000", "model.name=lw@0.25", "--json"]
    assert main(["train", str(data), "--budget", "20s", "--out", str(run), *overrides]) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["data"]["crop"] == [128, 128]  # as small as crops go: 100000 steps never fit
    phases = _metrics(run)
    # epochs before defect-free images joined are not validated; the last phase's every k-th
    # (the probe's choice) and the last are
    every = saved["train"]["validate_every"]
    last = int(phases[-1]["epoch"])
    for row in phases:
        wanted = row["phase"] == "all" and (int(row["epoch"]) % every == 0 or int(row["epoch"]) == last)
        assert (row["val_ap"] != "") == wanted, (row, every)
