"""The contract every backbone fulfils, so one classifier head and one decoder fit them all."""

from __future__ import annotations

from torch import Tensor, nn


class Backbone(nn.Module):
    """A feature extractor with a total stride of 32.

    ``forward`` returns a list of feature maps, one per entry of ``feature_strides`` (ascending, the
    last one being the final output at stride 32); ``feature_channels`` gives their channel counts.
    The segmentation decoder takes its shortcut from the map at stride 4 or 8 and its context from
    the last one; the classifier uses only the last one.
    """

    feature_strides: tuple[int, ...] = (4, 8, 32)
    feature_channels: tuple[int, ...]

    @property
    def out_channels(self) -> int:
        """Channels of the final feature map."""
        return self.feature_channels[-1]

    def forward(self, x: Tensor) -> list[Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError
