"""lwcnn: compact CNNs that find surface defects and run fast on ordinary CPUs.

``import lwcnn`` stays light: names that need PyTorch (``create_model``...) are imported on first
use, so the inference runtime can be installed and imported without torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_TORCH_EXPORTS = {
    "create_model": "lwcnn.models",
    "list_models": "lwcnn.models",
    "profile_model": "lwcnn.profiling",
}

if TYPE_CHECKING:
    from lwcnn.models import create_model, list_models
    from lwcnn.profiling import profile_model

__all__ = ["__version__", "create_model", "list_models", "profile_model"]


def __getattr__(name: str) -> Any:
    module_name = _TORCH_EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'lwcnn' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)
