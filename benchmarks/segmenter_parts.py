"""Where the segmenters' speed ratio goes: lw@0.35 and mobilenetv2@0.35 timed whole and as their
backbones alone (the features the decoder reads), in ONNX Runtime fp32, int8 and int8 decoder, so
that the decoder's share (whole minus backbone) can be read off side by side.

    python benchmarks/segmenter_parts.py [--runs 30] [--rounds 3] [--threads 1]

The graphs are those of ``lwcnn bench`` (the same random weights with realistic BN statistics, the
same export and int8 calibration); each is timed alone (one session at a time: two thread pools
side by side slow each other), ``--rounds`` times in turn, and the table gives the median of the
rounds' medians. The decoder column is an estimate (whole minus backbone): ONNX Runtime fuses and
lays out the two graphs separately.
"""

from __future__ import annotations

import argparse
import gc
import io
import statistics
import warnings

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from lwcnn.export import export_onnx
from lwcnn.export.onnx import DEFAULT_OPSET
from lwcnn.export.quantize import quantize_onnx
from lwcnn.export.rewrites import for_inference
from lwcnn.profiling.bench import INT8_CALIBRATION_IMAGES, trained_like
from lwcnn.runtime.backends import cpu_session
from lwcnn.tables import format_table
from lwcnn.timing import median_ms

SHAPE = (3, 512, 512)
MODELS = ("lw@0.35", "mobilenetv2@0.35")


class BackboneOnly(nn.Module):
    """A segmenter's backbone returning what its decoder reads: the last features and the shortcut."""

    def __init__(self, segmenter: nn.Module) -> None:
        super().__init__()
        self.backbone = segmenter.backbone
        self.shortcut = segmenter._shortcut_index

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.backbone(x)
        return features[-1], features[self.shortcut]


def backbone_onnx(segmenter: nn.Module) -> bytes:
    """The backbone of ``segmenter`` after the export's inference rewrites, as ONNX bytes."""
    module = BackboneOnly(for_inference(segmenter)).eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (torch.zeros(1, *SHAPE[:1], 64, 64),),
            buffer,
            input_names=["image"],
            output_names=["features", "shortcut"],
            dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}},
            opset_version=DEFAULT_OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    calibration = [rng.standard_normal(SHAPE).astype(np.float32) for _ in range(INT8_CALIBRATION_IMAGES)]
    graphs: dict[tuple[str, str, str], bytes] = {}
    for name in MODELS:
        segmenter = trained_like(name, "seg", 2, SHAPE)
        whole = export_onnx(segmenter, None)
        backbone = backbone_onnx(segmenter)
        graphs[(name, "onnxruntime", "whole")] = whole
        graphs[(name, "onnxruntime", "backbone")] = backbone
        graphs[(name, "onnxruntime-int8", "whole")] = quantize_onnx(whole, calibration)
        graphs[(name, "onnxruntime-int8", "backbone")] = quantize_onnx(backbone, calibration)
        graphs[(name, "onnxruntime-int8-decoder", "whole")] = quantize_onnx(whole, calibration, "decoder")
    x = rng.standard_normal((1, *SHAPE)).astype(np.float32)
    times: dict[tuple[str, str, str], list[float]] = {key: [] for key in graphs}
    for _ in range(args.rounds):
        for key, data in graphs.items():
            session = cpu_session(data, args.threads)
            median, _ = median_ms(lambda s=session: s.run(None, {"image": x}), args.runs, 5, 60.0)
            times[key].append(median)
            del session
            gc.collect()
    ms = {key: statistics.median(values) for key, values in times.items()}
    rows = []
    for name in MODELS:
        for engine in ("onnxruntime", "onnxruntime-int8", "onnxruntime-int8-decoder"):
            whole = ms[(name, engine, "whole")]
            # the int8-decoder model runs its backbone in fp32
            backbone = ms[(name, "onnxruntime" if engine.endswith("decoder") else engine, "backbone")]
            rows.append({"model": name, "engine": engine, "whole": whole, "backbone": backbone,
                         "decoder": whole - backbone})  # fmt: skip
    print(f"onnxruntime {ort.__version__}, {args.threads} thread(s), segmentation 3x512x512, batch 1, "
          f"{args.rounds} rounds of {args.runs} runs per graph")  # fmt: skip
    print(format_table(rows, [("model", "model"), ("engine", "engine"), ("whole", "whole (ms)", ".2f"),
                              ("backbone", "backbone (ms)", ".2f"),
                              ("decoder", "decoder, est. (ms)", ".2f")]))  # fmt: skip
    best = {name: min((r for r in rows if r["model"] == name), key=lambda r: r["whole"]) for name in MODELS}
    lw, mn = best["lw@0.35"], best["mobilenetv2@0.35"]
    print(
        f"fastest: lw@0.35 {lw['whole']:.2f} ms ({lw['engine']}), mobilenetv2@0.35 {mn['whole']:.2f} ms "
        f"({mn['engine']}): {mn['whole'] / lw['whole']:.2f}x; backbones alone in those engines: "
        f"{lw['backbone']:.2f} against {mn['backbone']:.2f} ms, {mn['backbone'] / lw['backbone']:.2f}x"
    )


if __name__ == "__main__":
    main()
