"""Our models against the sizes the paper reports (Tables 3-5), with the foundation issue's tolerances."""

from __future__ import annotations

import pytest

from lwcnn.models import create_model
from lwcnn.profiling import count_flops, count_parameters

# model, task, classes, input (C, H, W), paper MFLOPs, paper M weights, relative tolerance
PAPER_SIZES = [
    ("lw@0.35", "cls", 6, (3, 200, 200), 28, 0.04, 0.05),
    ("lw@0.35", "cls", 64, (3, 331, 331), 76, 0.06, 0.05),
    ("lw@0.75", "cls", 64, (3, 331, 331), 246, 0.14, 0.05),
    ("mobilenetv2@0.35", "cls", 64, (3, 331, 331), 267, 0.48, 0.05),
    ("mobilenetv2@1.4", "cls", 64, (3, 331, 331), 2684, 4.43, 0.05),
    ("resnetv2-50", "cls", 64, (3, 331, 331), 16082, 23.65, 0.15),
    ("lw@0.35", "seg", 2, (3, 512, 512), 923, 0.55, 0.15),
    ("lw@0.75", "seg", 2, (3, 512, 512), 1312, 0.60, 0.15),
]


@pytest.mark.parametrize(
    ("name", "task", "classes", "shape", "paper_mflops", "paper_mweights", "tolerance"),
    PAPER_SIZES,
    ids=[f"{row[0]}-{row[1]}-{row[2]}-{row[3][1]}" for row in PAPER_SIZES],
)
def test_size_matches_paper(name, task, classes, shape, paper_mflops, paper_mweights, tolerance):
    model = create_model(name, task=task, num_classes=classes, in_channels=shape[0])
    mflops = count_flops(model, (1, *shape)) / 1e6
    mweights = count_parameters(model) / 1e6
    assert mflops == pytest.approx(paper_mflops, rel=tolerance)
    assert mweights == pytest.approx(paper_mweights, rel=tolerance)


def test_grayscale_input_changes_only_the_first_convolution():
    rgb = count_parameters(create_model("lw@0.35", num_classes=6, in_channels=3))
    gray = count_parameters(create_model("lw@0.35", num_classes=6, in_channels=1))
    first_conv_out = 16  # make_divisible(32 * 0.35)
    assert rgb - gray == 2 * 3 * 3 * first_conv_out
