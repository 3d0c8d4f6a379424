"""Model definitions: pure ``torch.nn.Module``s, no training code (one file per family)."""

from lwcnn.models.backbone import Backbone
from lwcnn.models.heads import ASPP, Classifier, SegmentationDecoder, Segmenter, upsample_logits
from lwcnn.models.layers import ConvBNAct, make_divisible
from lwcnn.models.lw import LW_KERNELS, LWBackbone, LWBottleneck
from lwcnn.models.mobilenetv2 import MobileNetV2Backbone
from lwcnn.models.registry import (
    ModelFamily,
    ModelSpec,
    create_model,
    list_models,
    model_families,
    parse_model_name,
    register_family,
)
from lwcnn.models.resnetv2 import ResNetV2Backbone
from lwcnn.models.shufflenet import ShuffleNetV1Backbone

__all__ = [
    "ASPP",
    "LW_KERNELS",
    "Backbone",
    "Classifier",
    "ConvBNAct",
    "LWBackbone",
    "LWBottleneck",
    "MobileNetV2Backbone",
    "ModelFamily",
    "ModelSpec",
    "ResNetV2Backbone",
    "SegmentationDecoder",
    "Segmenter",
    "ShuffleNetV1Backbone",
    "create_model",
    "list_models",
    "make_divisible",
    "model_families",
    "parse_model_name",
    "register_family",
    "upsample_logits",
]
