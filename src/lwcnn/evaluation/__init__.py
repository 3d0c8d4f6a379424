"""Evaluation: metrics, reports and plots."""

from lwcnn.evaluation.metrics import classification_metrics, confusion_matrix, format_confusion

__all__ = ["classification_metrics", "confusion_matrix", "format_confusion"]
