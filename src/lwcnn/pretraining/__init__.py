"""Pretraining backbones on formula-driven images (``lwcnn pretrain``): the pretext tasks
(:mod:`~lwcnn.pretraining.objectives`) and the run (:mod:`~lwcnn.pretraining.run`)."""

from lwcnn.pretraining.objectives import OBJECTIVES, PretextModel
from lwcnn.pretraining.run import PretrainResult, pretrain

__all__ = ["OBJECTIVES", "PretextModel", "PretrainResult", "pretrain"]
