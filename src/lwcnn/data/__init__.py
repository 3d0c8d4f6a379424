"""Datasets: reading images, scanning labelled collections, seeded splits."""

from lwcnn.data.classification import (
    NEU_CLASSES,
    DataError,
    LabelledImages,
    check_images,
    scan_class_folders,
    scan_classification,
    scan_neu,
)
from lwcnn.data.images import ImageReadError, read_image
from lwcnn.data.splits import NEU_STANDARD_SPLIT, Split, stratified_split

__all__ = [
    "NEU_CLASSES",
    "NEU_STANDARD_SPLIT",
    "DataError",
    "ImageReadError",
    "LabelledImages",
    "Split",
    "check_images",
    "read_image",
    "scan_class_folders",
    "scan_classification",
    "scan_neu",
    "stratified_split",
]
