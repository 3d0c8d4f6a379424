from __future__ import annotations

from pathlib import Path

import pytest

from tests.synthetic import SHARED_DATASETS


@pytest.fixture
def neu_root() -> Path:
    root = SHARED_DATASETS / "neu"
    if not root.is_dir():
        pytest.skip(f"real NEU data not found at {root} (../shared/datasets is not on this machine)")
    return root
