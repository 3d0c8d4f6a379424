"""lwcnn: compact CNNs that find surface defects and run fast on ordinary CPUs.

``import lwcnn`` stays light: every name is imported on first use, so the inference runtime
(``lwcnn.Inspector``) can be installed and imported without torch; ``create_model`` and
``profile_model`` need the training install.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY_EXPORTS = {
    "Inspector": "lwcnn.runtime",
    "create_model": "lwcnn.models",
    "list_models": "lwcnn.models",
    "profile_model": "lwcnn.profiling",
}

if TYPE_CHECKING:
    from lwcnn.models import create_model, list_models
    from lwcnn.profiling import profile_model
    from lwcnn.runtime import Inspector

__all__ = ["Inspector", "__version__", "create_model", "list_models", "profile_model"]


def __getattr__(name: str) -> Any:
    module_name = _LAZY_EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'lwcnn' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)
