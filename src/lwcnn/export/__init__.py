"""Exporting trained models for deployment (needs torch; the inference runtime does not)."""

from lwcnn.export.onnx import ONNX_METADATA_KEY, export_onnx, onnx_metadata

__all__ = ["ONNX_METADATA_KEY", "export_onnx", "onnx_metadata"]
