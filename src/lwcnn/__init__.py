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

__all__ = ["Inspector", "__version__", "create_model", "list_models", "open_trained_model", "profile_model"]


def open_trained_model(
    metadata_path: Any, backend: str = "auto", threads: int | None = None, source: str = ""
) -> Any:
    """The inspection backend of a trained model file (:func:`lwcnn.trained_models.open_trained_model`:
    its export, cached beside it, or PyTorch eager). Here, at the package root, because the runtime
    may import neither torch nor the training code and reaches the training install through this
    name; it raises ImportError on a runtime-only install."""
    from lwcnn.trained_models import open_trained_model as open_model

    return open_model(metadata_path, backend, threads, source)


def __getattr__(name: str) -> Any:
    module_name = _LAZY_EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'lwcnn' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)
