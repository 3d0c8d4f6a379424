"""ONNX Runtime latency of the LW depthwise pyramid as one grouped 5x5 convolution (how lwcnn
trains it), as eight separate depthwise convolutions (the paper's drawing), as lwcnn's first export
wrote it (multiplier-1 depthwise convolutions over the input repeated six times with ``Tile``,
kept here as the baseline of the current one) and as lwcnn's export writes it now (whole channel
blocks throughout, lwcnn.export.rewrites); same weights.

    python benchmarks/lw_pyramid_ort.py [--runs 200] [--threads 1]

lw@0.35, classification 3x200x200 (6 classes) and segmentation 3x512x512, batch 1, ONNX Runtime
fp32 on the CPU; the graphs are timed alternately, ten runs at a time; medians and ratio. Use one
thread: with more, the idle sessions' thread pools keep spinning while another session runs and
slow it down (every graph measured slower with 2 threads than with 1); `lwcnn bench` times
multi-threaded sessions one at a time.
"""

from __future__ import annotations

import argparse
import copy
import statistics

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F
from torch import nn

from lwcnn.export import export_onnx
from lwcnn.models import LW_KERNELS, create_model
from lwcnn.models.layers import same_padding
from lwcnn.models.lw import LWDepthwisePyramid
from lwcnn.runtime.backends import cpu_session
from lwcnn.tables import format_table
from lwcnn.timing import time_alternately


class EightBranchPyramid(nn.Module):
    """The same pyramid as eight depthwise convolutions, outputs interleaved to channel c * 8 + k."""

    def __init__(self, pyramid: LWDepthwisePyramid) -> None:
        super().__init__()
        self.weights = pyramid.weights
        self.stride = pyramid.stride
        self.channels = pyramid.channels
        self.pads = [(*same_padding(kw), *same_padding(kh)) for kh, kw in LW_KERNELS]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [
            F.conv2d(F.pad(x, pad), w, stride=self.stride, groups=self.channels)
            for w, pad in zip(self.weights, self.pads, strict=True)
        ]
        n, c, h, w = outs[0].shape
        return torch.stack(outs, dim=2).reshape(n, c * len(outs), h, w)


def eight_branch_copy(model: nn.Module) -> nn.Module:
    model = copy.deepcopy(model)
    for module in model.modules():
        if hasattr(module, "pyramid") and isinstance(module.pyramid, LWDepthwisePyramid):
            module.pyramid = EightBranchPyramid(module.pyramid)
    return model


class TiledPyramid(nn.Module):
    """lwcnn's first export of the pyramid (commit a3c1736): BN and ReLU6 folded, the 5x1 and 1x5
    kernels as depthwise convolutions of their own shape, the six small ones as one depthwise 3x3
    over the input tiled six times; output channels kernel-major, projection permuted to match."""

    small = tuple(i for i, (kh, kw) in enumerate(LW_KERNELS) if kh <= 3 and kw <= 3)
    long = tuple(i for i, (kh, kw) in enumerate(LW_KERNELS) if kh > 3 or kw > 3)

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        pyramid, bn, kernels = block.pyramid, block.bn, len(LW_KERNELS)
        channels = self.channels = pyramid.channels
        self.stride = pyramid.stride
        with torch.no_grad():
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            shift = (bn.bias - bn.running_mean * scale).reshape(channels, kernels)
            full = pyramid.kernel().reshape(channels, kernels, 5, 5) * scale.reshape(channels, kernels, 1, 1)
            self.long_w = [pyramid.weights[i] * scale.reshape(channels, kernels)[:, i, None, None, None]
                           for i in self.long]  # fmt: skip
            self.long_b = [shift[:, i].clone() for i in self.long]
            self.small_w = full[:, list(self.small), 1:4, 1:4].transpose(0, 1).reshape(-1, 1, 3, 3).clone()
            self.small_b = shift[:, list(self.small)].transpose(0, 1).reshape(-1).clone()
            order = self.long + self.small
            permutation = [c * kernels + k for k in order for c in range(channels)]
            conv = next(m for m in block.project if isinstance(m, nn.Conv2d))
            conv.weight.copy_(conv.weight[:, permutation].clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [
            F.conv2d(x, w, b, stride=self.stride, padding=(w.shape[2] // 2, w.shape[3] // 2),
                     groups=self.channels).clamp(0, 6)
            for w, b in zip(self.long_w, self.long_b, strict=True)
        ]  # fmt: skip
        tiled = x.repeat(1, len(self.small), 1, 1)
        small = F.conv2d(tiled, self.small_w, self.small_b, stride=self.stride, padding=1,
                         groups=self.small_w.shape[0])  # fmt: skip
        return torch.cat([*outs, small.clamp(0, 6)], dim=1)


def tiled_copy(model: nn.Module, input_shape: tuple[int, ...]) -> nn.Module:
    """The first export: a block whose input exceeded 128x128 pixels at the working size kept the
    grouped convolution (tiling a large input six times cost more than it saved)."""
    model = copy.deepcopy(model).eval()
    blocks = [m for m in model.modules() if isinstance(getattr(m, "pyramid", None), LWDepthwisePyramid)]
    pixels: dict[int, int] = {}
    hooks = [b.register_forward_pre_hook(lambda m, a: pixels.__setitem__(id(m), a[0][0, 0].numel()))
             for b in blocks]  # fmt: skip
    with torch.no_grad():
        model(torch.zeros(input_shape))
    for hook in hooks:
        hook.remove()
    for block in blocks:
        if pixels[id(block)] <= 128 * 128:
            block.pyramid, block.bn, block.act = TiledPyramid(block), nn.Identity(), nn.Identity()
    return model


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for task, classes, shape, runs in (
        ("cls", 6, (1, 3, 200, 200), args.runs),
        ("seg", 2, (1, 3, 512, 512), args.runs // 4),
    ):
        torch.manual_seed(0)
        model = create_model("lw@0.35", task=task, num_classes=classes).eval()
        with torch.no_grad():
            model.train()(torch.randn(2, *shape[1:]))
        model.eval()
        size = {"preprocessing": {"size": list(shape[2:])}}
        graphs = {
            "fused 5x5": export_onnx(model, None, rewrite=False),
            "8 branches": export_onnx(eight_branch_copy(model), None, rewrite=False),
            "first export (Tile)": export_onnx(tiled_copy(model, shape), None, rewrite=False),
            "export (rewritten)": export_onnx(model, None, size),
        }
        sessions = {name: cpu_session(data, args.threads) for name, data in graphs.items()}
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        outputs = [s.run(None, {"image": x})[0] for s in sessions.values()]
        assert all(np.max(np.abs(outputs[0] - o)) < 1e-4 for o in outputs[1:]), "the graphs disagree"
        runners = {
            name: (lambda s=session, x=x: s.run(None, {"image": x})) for name, session in sessions.items()
        }
        times = time_alternately(runners, runs, warmup=10)
        medians = {name: statistics.median(t) for name, t in times.items()}
        for name in sessions:
            rows.append({"task": task, "input": "x".join(map(str, shape[1:])), "pyramid": name,
                         "runs": len(times[name]), "median_ms": medians[name],
                         "over_fused": medians["fused 5x5"] / medians[name]})  # fmt: skip
    print(f"onnxruntime {ort.__version__}, {args.threads} thread(s), batch 1, lw@0.35")
    columns = [
        ("task", "task"),
        ("input", "input"),
        ("pyramid", "pyramid"),
        ("runs", "runs"),
        ("median_ms", "median (ms)", ".3f"),
        ("over_fused", "speed-up over fused 5x5", ".2f"),
    ]
    print(format_table(rows, columns))


if __name__ == "__main__":
    main()
