"""FLOP counting, weight counting and latency measurement."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lwcnn.models import create_model
from lwcnn.profiling import (
    count_flops,
    count_parameters,
    measure_latency,
    parse_input_shape,
    profile_model,
)
from lwcnn.profiling.paper import PAPER_ROWS, compare_with_paper


def test_flops_are_twice_the_multiply_accumulates():
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False),  # 100x100 out: 3*9*16 MACs per pixel
        nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False),  # depthwise: 9*16 MACs per pixel
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 6),
    )
    macs = 100 * 100 * 3 * 9 * 16 + 100 * 100 * 9 * 16 + 16 * 6
    assert count_flops(model, (1, 3, 200, 200)) == 2 * macs


def test_flop_count_leaves_the_model_untouched():
    model = nn.Conv2d(3, 4, 3)
    weight = model.weight.detach().clone()
    count_flops(model, (1, 3, 8, 8))
    assert model.weight.device.type == "cpu" and torch.equal(model.weight, weight)


def test_parameters_count_trainable_weights_only():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.Linear(4, 2))
    assert count_parameters(model) == 3 * 4 * 9 + 2 * 4 + 4 * 2 + 2
    model[0].weight.requires_grad_(False)
    assert count_parameters(model) == 2 * 4 + 4 * 2 + 2


def test_latency_is_a_median_of_the_requested_runs_and_restores_threads():
    before = torch.get_num_threads()
    stats = measure_latency(nn.Conv2d(3, 8, 3), (1, 3, 32, 32), threads=1, warmup=2, runs=7)
    assert stats.runs == 7 and stats.threads == 1
    assert 0 < stats.p10_ms <= stats.median_ms <= stats.p90_ms
    assert torch.get_num_threads() == before


def test_latency_rejects_zero_threads():
    with pytest.raises(ValueError, match="threads"):
        measure_latency(nn.Identity(), (1, 1), threads=0)


@pytest.mark.parametrize(("text", "shape"), [("3x200x200", (3, 200, 200)), ("1X512x1250", (1, 512, 1250))])
def test_parse_input_shape(text, shape):
    assert parse_input_shape(text) == shape


@pytest.mark.parametrize("text", ["3x200", "ax2x2", "0x8x8", "3x-1x8", ""])
def test_parse_input_shape_rejects_bad_text(text):
    with pytest.raises(ValueError, match="CxHxW"):
        parse_input_shape(text)


def test_profile_model_reports_sizes_and_latency():
    result = profile_model("lw@0.35", "cls", 6, (3, 200, 200), threads=1, warmup=1, runs=3)
    model_flops = count_flops(create_model("lw@0.35", num_classes=6), (1, 3, 200, 200))
    assert result.flops_m == pytest.approx(model_flops / 1e6)
    assert result.params_m == pytest.approx(0.0413, abs=5e-4)
    assert result.latency_ms is not None and result.latency_ms > 0 and result.runs == 3


def test_paper_comparison_covers_tables_3_to_5():
    rows = compare_with_paper(latency=False)
    assert len(rows) == len(PAPER_ROWS)
    assert {row["table"] for row in rows} == {"3", "4", "5"}
    lw_neu = next(r for r in rows if r["table"] == "4" and r["model"] == "lw@0.35")
    assert lw_neu["paper_flops_m"] == 28
    assert lw_neu["flops_delta_pct"] == pytest.approx(100 * (lw_neu["flops_m"] / 28 - 1))
    assert all(row["latency_ms"] is None for row in rows)
