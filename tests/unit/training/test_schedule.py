from __future__ import annotations

import pytest

from lwcnn.config import load_config
from lwcnn.errors import ConfigError
from lwcnn.training.schedule import planned_epochs, run_schedule, scaled_schedule, stretch_entry


def test_a_full_length_run_is_the_papers_schedule():
    schedule = scaled_schedule(load_config(None)["train"], 60000)
    assert schedule.scale == 1.0 and schedule.decay_every == 10000
    assert schedule.bn_momentum == pytest.approx(0.0003)
    assert schedule.lr_at(0) == pytest.approx(1e-4)
    assert schedule.lr_at(10000) == pytest.approx(0.9e-4)
    assert schedule.lr_at(60000) == pytest.approx(1e-4 * 0.9**6)


def test_a_short_run_keeps_the_shape():
    train = load_config(None)["train"]
    short = scaled_schedule(train, 1200)
    assert short.scale == pytest.approx(0.02) and short.decay_every == pytest.approx(200)
    assert short.lr_at(1200) == pytest.approx(1e-4 * 0.9**6)  # ends where the paper's run ends
    # BN averaging horizon (1 / momentum) shrinks with the run: ~3333 * 0.02 = ~67 steps
    assert 1 / short.bn_momentum == pytest.approx(3333 * 0.02, rel=0.02)


def test_a_run_without_steps_is_an_error():
    with pytest.raises(ValueError, match="no training steps"):
        scaled_schedule(load_config(None)["train"], 0)


def test_a_stretched_schedule_is_continuous_and_ends_at_the_planned_rate():
    planned = scaled_schedule(load_config(None)["train"], 1000)
    longer = planned.stretched(400, 1300)  # 600 planned steps left spread over 900
    assert longer.lr_at(400) == pytest.approx(planned.lr_at(400))
    assert longer.lr_at(399) == pytest.approx(planned.lr_at(399))
    assert longer.lr_at(850) == pytest.approx(planned.lr_at(700))  # halfway through what was left
    assert longer.lr_at(1300) == pytest.approx(planned.lr_at(1000))
    shorter = longer.stretched(1000, 1100)  # re-planned again, shorter: 200 planned steps over 100
    assert shorter.lr_at(1000) == pytest.approx(longer.lr_at(1000))
    assert shorter.lr_at(1050) == pytest.approx(planned.lr_at(900))
    assert shorter.lr_at(1100) == pytest.approx(planned.lr_at(1000))
    rates = [shorter.lr_at(step) for step in range(0, 1101, 10)]
    assert rates == sorted(rates, reverse=True)
    with pytest.raises(ValueError, match="re-plan"):
        planned.stretched(1000, 1000)


def test_a_runs_recorded_stretch_rebuilds_its_schedule_and_a_malformed_one_is_a_config_error():
    train = load_config(None)["train"]
    planned = scaled_schedule(train, 50 * 20)
    longer = planned.stretched(400, 60 * 20)
    recorded = {**train, "epochs": 60, "stretch": stretch_entry(50, longer.knots)}
    assert planned_epochs(recorded) == 50 and planned_epochs(train) == train["epochs"]
    rebuilt = run_schedule(recorded, 20)
    assert all(rebuilt.lr_at(s) == pytest.approx(longer.lr_at(s)) for s in range(0, 1201, 50))
    assert run_schedule(train, 20) == scaled_schedule(train, train["epochs"] * 20)
    for bad in ({"knots": [[400, 400.0]]}, {"planned_epochs": 50, "knots": [[400, 400.0], [300, 450.0]]},
                {"planned_epochs": 50, "knots": [[1300, 900.0]]}):  # fmt: skip
        with pytest.raises(ConfigError, match=r"train\.stretch"):
            run_schedule({**train, "epochs": 60, "stretch": bad}, 20)


def test_a_cosine_schedule_falls_from_the_rate_to_zero_and_keeps_its_shape_when_stretched():
    train = {**load_config(None)["train"], "lr_schedule": "cosine", "lr": 2e-3}
    cosine = scaled_schedule(train, 1000)
    assert cosine.lr_at(0) == pytest.approx(2e-3)
    assert cosine.lr_at(500) == pytest.approx(1e-3)  # half the rate halfway, not the paper's decay
    assert cosine.lr_at(1000) == pytest.approx(0.0, abs=1e-12)
    assert cosine.lr_at(1200) == pytest.approx(0.0, abs=1e-12)  # past the end: no rise again
    rates = [cosine.lr_at(step) for step in range(0, 1001, 10)]
    assert rates == sorted(rates, reverse=True)
    exponential = scaled_schedule({**train, "lr_schedule": "exponential"}, 1000)
    assert exponential.lr_at(500) != pytest.approx(cosine.lr_at(500))
    longer = cosine.stretched(400, 1300)  # a re-planned run: continuous, and still ends at zero
    assert longer.lr_at(400) == pytest.approx(cosine.lr_at(400))
    assert longer.lr_at(850) == pytest.approx(cosine.lr_at(700))
    assert longer.lr_at(1300) == pytest.approx(0.0, abs=1e-12)


def test_an_unknown_schedule_is_a_config_error_naming_the_choices():
    with pytest.raises(ConfigError, match=r"train\.lr_schedule.*exponential, cosine"):
        load_config(None, ["train.lr_schedule=linear"])
