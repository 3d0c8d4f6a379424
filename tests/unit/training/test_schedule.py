from __future__ import annotations

import pytest

from lwcnn.config import load_config
from lwcnn.training.schedule import scaled_schedule


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
