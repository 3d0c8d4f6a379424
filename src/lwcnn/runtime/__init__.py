"""The inspection runtime: ONNX Runtime engine, defect regions, overlays. Imports neither torch nor
the training code (``pip install lwcnn[runtime]`` is enough to run it on exported models)."""

from lwcnn.runtime.engine import DEFAULT_MODEL, Inspection, InspectionFailure, Inspector, open_backend
from lwcnn.runtime.regions import Region, find_regions

__all__ = [
    "DEFAULT_MODEL",
    "Inspection",
    "InspectionFailure",
    "Inspector",
    "Region",
    "find_regions",
    "open_backend",
]
