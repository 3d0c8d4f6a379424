"""What tests generate: small datasets (quick to make, quick to learn), single images, and small
random-weight models exported with real metadata. Helpers live here; fixtures in conftest.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

PATTERNS = ("horizontal", "vertical", "checker")
#: The real datasets (../shared/datasets) where this machine has them; tests that read them skip
#: with a reason where it does not.
SHARED_DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def write_image(path: Path, size: tuple[int, int] = (12, 10), mode: str = "L", seed: int = 0) -> Path:
    """A small random image (width, height) in ``mode``, format from the extension."""
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode).save(path)
    return path


def exported(tmp_path: Path, task: str, channels: int, size: tuple[int, int], **meta):
    """A small lw@0.35 (random weights, non-trivial BN statistics) exported to ``tmp_path/TASK.onnx``
    with real metadata; returns (path, model)."""
    import torch

    from lwcnn.export import export_onnx
    from lwcnn.models import create_model

    torch.manual_seed(0)
    model = create_model("lw@0.35", task=task, num_classes=3 if task == "cls" else 2, in_channels=channels)
    with torch.no_grad():
        model.train()(torch.rand(4, channels, *size) * 4 - 2)  # non-trivial BN statistics
    model.eval()
    metadata = {
        "task": task,
        "classes": ["good", "scratch", "dent"] if task == "cls" else ["background", "defect"],
        "preprocessing": {"channels": channels, "size": list(size), "mean": [0.5], "std": [0.25]},
        **meta,
    }
    path = tmp_path / f"{task}.onnx"
    export_onnx(model, path, metadata)
    return path, model


def pattern_image(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A gray (size, size) uint8 texture of ``kind`` with a random phase, period and noise."""
    period = int(rng.integers(4, 8))
    phase = int(rng.integers(0, period))
    ys, xs = np.mgrid[0:size, 0:size]
    if kind == "horizontal":
        base = ((ys + phase) // (period // 2)) % 2
    elif kind == "vertical":
        base = ((xs + phase) // (period // 2)) % 2
    else:
        base = (((ys + phase) // (period // 2)) + ((xs + phase) // (period // 2))) % 2
    image = 60 + 120 * base + rng.normal(0, 12, (size, size))
    return np.clip(image, 0, 255).astype(np.uint8)


def make_class_folders(
    root: Path, per_class: int = 12, size: int = 32, seed: int = 0, suffix: str = ".png"
) -> Path:
    """``root/<pattern>/<n>.png`` for the three patterns."""
    rng = np.random.default_rng(seed)
    for kind in PATTERNS:
        (root / kind).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(pattern_image(kind, size, rng)).save(root / kind / f"{i:03d}{suffix}")
    return root


def make_masked_folder(root: Path, count: int = 10, defective_every: int = 2, size=(60, 80)) -> Path:
    """``images/NN.png`` with a bright 4x6 defect in every ``defective_every``-th, ``masks/NN.png``."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for k in range(count):
        image = rng.integers(60, 120, size, dtype=np.uint8)
        if k % defective_every == 0:
            mask = np.zeros(size, np.uint8)
            top, left = min(5 + 3 * k, size[0] - 5), min(50 + k, size[1] - 7)
            mask[top : top + 4, left : left + 6] = 255
            image[mask > 0] = 250
            Image.fromarray(mask).save(root / "masks" / f"{k:02d}.png")
        Image.fromarray(image).save(root / "images" / f"{k:02d}.png")
    return root
