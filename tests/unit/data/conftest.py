from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED_DATASETS = Path(__file__).resolve().parents[3].parent / "shared" / "datasets"


def write_image(path: Path, size: tuple[int, int] = (12, 10), mode: str = "L", seed: int = 0) -> Path:
    """A small random image (width, height) in ``mode``, format from the extension."""
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode).save(path)
    return path


@pytest.fixture
def neu_root() -> Path:
    root = SHARED_DATASETS / "neu"
    if not root.is_dir():
        pytest.skip(f"real NEU data not found at {root} (../shared/datasets is not on this machine)")
    return root
