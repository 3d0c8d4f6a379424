"""A segmenter with K defect types: K + 1 outputs, trained from class-index masks; its regions carry
their types through ONNX Runtime and the ONNX file names the types; per-type figures against a hand
computation; a one-type dataset still makes today's two-class model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lwcnn.cli import main
from lwcnn.config import load_config
from lwcnn.evaluation.defect_types import type_outcome, type_report
from lwcnn.runtime.engine import Inspection
from lwcnn.runtime.regions import Region
from lwcnn.training.segmentation import train_segmenter, typed_cross_entropy

from .test_segmentation_training import TINY

TYPES = ("spot", "scratch")


def two_type_folder(root: Path, count: int = 24, size: int = 64, seed: int = 0) -> Path:
    """images/ + class-index masks/ + masks/types.txt: bright squares (spot, 1) and dark horizontal
    bars (scratch, 2) on noise; every third image defect-free."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for index in range(count):
        image = rng.normal(128, 12, (size, size)).clip(0, 255)
        labels = np.zeros((size, size), np.uint8)
        kind = index % 3
        if kind:
            top, left = (int(v) for v in rng.integers(8, size - 20, 2))
            if kind == 1:
                image[top : top + 10, left : left + 10] = 235
                labels[top : top + 10, left : left + 10] = 1
            else:
                image[top : top + 3, left - 6 : left + 18] = 20
                labels[top : top + 3, left - 6 : left + 18] = 2
        Image.fromarray(image.astype(np.uint8)).save(root / "images" / f"{index:03d}.png")
        if labels.any():
            Image.fromarray(labels).save(root / "masks" / f"{index:03d}.png")
    (root / "masks" / "types.txt").write_text("".join(f"{t}\n" for t in TYPES))
    return root


@pytest.fixture(scope="module")
def typed_run(tmp_path_factory) -> tuple[Path, Path]:
    data = two_type_folder(tmp_path_factory.mktemp("typed") / "data")
    out = tmp_path_factory.mktemp("runs") / "typed"
    overrides = [o for o in TINY if not o.startswith("data.split")]
    config = load_config(
        None,
        [
            *overrides,
            f"data.root={data}",
            f"out={out}",
            "train.epochs=3",
            "data.types=typed",
            "data.split={train: 0.5, val: 0.25, test: 0.25}",
        ],
    )
    train_segmenter(config, show_progress=False)
    return data, out


def test_a_typed_model_has_one_output_per_type_and_its_onnx_file_names_them(typed_run, tmp_path):
    data, out = typed_run
    card = json.loads((out / "best.json").read_text())
    assert card["classes"] == ["background", *TYPES]
    assert main(["export", "--weights", str(out / "best"), "--out", str(tmp_path / "m.onnx")]) == 0
    import onnx

    stored = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert json.loads(stored["lwcnn"])["classes"] == ["background", *TYPES]
    from lwcnn.runtime.engine import Inspector

    inspector = Inspector(tmp_path / "m.onnx", threshold=0.01)  # low: regions appear on a tiny model
    assert inspector.types == list(TYPES)
    result = inspector.inspect(str(data / "images" / "001.png"))
    assert result.types == TYPES and result.regions
    assert all(r.type in TYPES and 0.0 <= r.type_probability <= 1.0 for r in result.regions)
    assert (
        set(np.unique(result.type_mask[result.mask])) <= {1, 2} and not result.type_mask[~result.mask].any()
    )
    answer = result.to_dict()
    assert len(answer["region_types"]) == len(answer["boxes"]) and set(answer["types_found"]) <= set(TYPES)


def test_an_acceptable_type_does_not_make_the_image_defective(typed_run, tmp_path):
    from lwcnn.runtime.engine import Inspector

    _, out = typed_run
    strict = Inspector(out / "best", backend="torch", threshold=0.01)
    lenient = Inspector(out / "best", backend="torch", threshold=0.01, ok_classes=list(TYPES))
    flagged = strict.inspect(np.full((64, 64), 128, np.uint8))
    assert flagged.regions  # at this threshold the untrained-looking model finds something
    assert flagged.defective and not lenient.inspect(np.full((64, 64), 128, np.uint8)).defective


def test_evaluate_prints_and_writes_the_per_type_figures(typed_run, tmp_path, capsys):
    data, out = typed_run
    code = main(
        ["evaluate", "--weights", str(out / "best"), "--data", str(data), "--json", "--out", str(tmp_path)]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    per_type = report["defect_types"]["types"]
    assert list(per_type) == list(TYPES)
    assert report["defect_types"]["confusion"]["labels"] == [*TYPES, "none"]
    assert (tmp_path / "type_confusion.png").is_file()


def test_merged_types_by_default_make_the_one_type_model(tmp_path):
    data = two_type_folder(tmp_path / "data", count=9)
    out = tmp_path / "merged"
    overrides = [o for o in TINY if not o.startswith("data.split")]
    config = load_config(
        None,
        [*overrides, f"data.root={data}", f"out={out}", "train.epochs=1",
         "data.split={train: 0.5, val: 0.25, test: 0.25}"],
    )  # fmt: skip
    train_segmenter(config, show_progress=False)
    assert json.loads((out / "best.json").read_text())["classes"] == ["background", "defect"]
    # evaluated on the same typed data, as the one-type model it is
    assert main(["evaluate", "--weights", str(out / "best"), "--data", str(data), "--json"]) == 0


def test_per_type_figures_against_a_hand_computation():
    truth = np.zeros((10, 10), np.uint8)
    truth[0:2, 0:4] = 1  # a spot of 8 pixels
    truth[6:8, 6:10] = 2  # a scratch of 8 pixels
    predicted = np.zeros((10, 10), np.uint8)
    predicted[0:2, 0:2] = 1  # half the spot, called a spot
    predicted[6:8, 6:10] = 1  # the whole scratch, called a spot
    predicted[4, 0] = 2  # a false scratch pixel
    mask = predicted > 0
    regions = [
        Region(4, (0, 0, 2, 2), "spot", 0.9),
        Region(8, (6, 6, 10, 8), "spot", 0.8),
        Region(1, (0, 4, 1, 5), "scratch", 0.7),
    ]
    result = Inspection("x", "seg", "defective", True, 0.9, (10, 10), 1.0, area=13, regions=regions,
                        mask=mask, types=TYPES, type_mask=predicted)  # fmt: skip
    clean = Inspection("y", "seg", "OK", False, 0.1, (10, 10), 1.0, mask=np.zeros((10, 10), bool),
                       types=TYPES, type_mask=np.zeros((10, 10), np.uint8))  # fmt: skip
    outcomes = [type_outcome(truth, result, 2), type_outcome(np.zeros((10, 10), np.uint8), clean, 2)]
    report = type_report(outcomes, TYPES)
    spot, scratch = report["types"]["spot"], report["types"]["scratch"]
    # spot: truth 8 px, predicted 4 + 8 = 12 px, 4 in common: IoU 4 / 16, Dice 8 / 20
    assert spot == {"images": 1, "tpr": 1.0, "iou": 4 / 16, "dice": 8 / 20}
    # scratch: truth 8 px, predicted 1 px (elsewhere): nothing in common; found as a type on the image
    assert scratch == {"images": 1, "tpr": 1.0, "iou": 0.0, "dice": 0.0}
    # rows true (spot, scratch, none), columns predicted: the spot right, the scratch called a
    # spot, the false scratch pixel a false region
    assert report["confusion"]["matrix"] == [[1, 0, 0], [1, 0, 0], [0, 1, 0]]
    assert report["type_accuracy"] == 0.5 and report["defects"] == 2


def test_inspect_counts_the_images_per_type_found(typed_run, tmp_path, capsys):
    data, out = typed_run
    code = main(["inspect", str(data / "images"), "--weights", str(out / "best"), "--backend", "onnxruntime",
                 "--threshold", "0.01", "--out", str(tmp_path / "insp"), "--json"])  # fmt: skip
    assert code == 0
    report = json.loads((tmp_path / "insp" / "results.json").read_text())
    assert set(report["summary"]["types"]) == set(TYPES)
    found = sum(report["summary"]["types"].values())
    assert found == sum(len(r["types_found"]) for r in report["results"]) > 0
    with Image.open(next((tmp_path / "insp" / "overlays").iterdir())) as picture:
        assert picture.width > 64  # image | overlay, with the legend of the types in the caption


def _typed_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 4, 6, 5, generator=generator) * 3
    target = torch.randint(0, 4, (2, 6, 5), generator=generator)
    return logits, target, torch.tensor([1.0, 2.0, 2.0, 2.0])


def test_the_type_weighted_loss_at_weight_one_is_the_plain_cross_entropy():
    logits, target, weight = _typed_batch()
    plain = torch.nn.functional.cross_entropy(logits, target, weight=weight)
    assert torch.allclose(typed_cross_entropy(logits, target, weight, 1.0), plain, atol=1e-6)


def test_the_type_weight_scales_only_the_which_type_term():
    logits, target, weight = _typed_batch(1)
    # at weight 0 only P(defect) is taught: the loss of the merged two-class logits (background,
    # logsumexp of the types), which does not move when the type logits trade places
    merged = torch.stack([logits[:, 0], torch.logsumexp(logits[:, 1:], dim=1)], dim=1)
    binary = torch.nn.functional.cross_entropy(merged, (target > 0).long(), weight=weight[:2])
    assert torch.allclose(typed_cross_entropy(logits, target, weight, 0.0), binary, atol=1e-6)
    swapped = logits[:, [0, 2, 1, 3]]
    assert torch.allclose(typed_cross_entropy(swapped, target, weight, 0.0), binary, atol=1e-6)
    assert not torch.allclose(typed_cross_entropy(swapped, target, weight, 1.0),
                              typed_cross_entropy(logits, target, weight, 1.0))  # fmt: skip
    # linear in the weight in between
    half = typed_cross_entropy(logits, target, weight, 0.5)
    full = typed_cross_entropy(logits, target, weight, 1.0)
    assert torch.allclose(half, (binary + full) / 2, atol=1e-6)


def test_a_negative_type_weight_is_refused_at_load():
    from lwcnn.errors import ConfigError

    assert load_config(None, ["task=seg", "train.type_weight=0.25"])["train"]["type_weight"] == 0.25
    with pytest.raises(ConfigError, match=r"train\.type_weight.*-0\.5"):
        load_config(None, ["task=seg", "train.type_weight=-0.5"])
