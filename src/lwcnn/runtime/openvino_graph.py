"""Graph rewrites that OpenVINO's CPU plugin runs faster, applied to a model after it is read and
before it is compiled (the ONNX file is one for every engine; these change only OpenVINO's copy).

**A concatenation that feeds a 1x1 convolution becomes a sum of 1x1 convolutions.** The exported LW
block concatenates the maps of its depthwise convolutions and projects them with a 1x1 convolution
(``export/rewrites.py``: the form ONNX Runtime runs fastest). OpenVINO's CPU plugin keeps its maps
in a channel-blocked or channels-last layout and ran these concatenations in its reference kernel
(``ref_bf16``: 15% of lw@0.35's kernel time segmenting 512 x 512 in bf16, ``python -m
benchmarks.openvino_operator_profile`` on a 2-core Intel Xeon with AMX, 2026-12-05). Since the
projection is linear, ``W [a; b; c; d]`` equals ``W_a a + W_b b + W_c c + W_d d``: each piece gets
its own 1x1 convolution over its columns of the weights, and the sums fuse into the convolutions as
post-ops. Same function up to float rounding; in ONNX Runtime the same form was slower (its
concatenations of whole channel blocks are free), which is why the export keeps the concatenation
and OpenVINO's copy is rewritten here. The decoder's ASPP (a concatenation of four 128-channel
branches and a 1x1 projection) is left as it is: its concatenation was already cheap
(:data:`WHOLE_BLOCK`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: A concatenation whose pieces are all whole multiples of this many channels is left alone: in the
#: same profile the decoder's (four pieces of 128) took 0.3% of the kernel time, and a probe that
#: rewrote it too found the segmenters a few percent slower (docs/results.md, issue 21's fourth slice).
WHOLE_BLOCK = 32


def split_concat_projections(model: Any) -> int:
    """Rewrite, in place, every channel concatenation of an ``openvino.Model`` whose only consumer is
    a 1x1 convolution (stride 1, no padding, constant weights) and whose pieces are not all whole
    multiples of :data:`WHOLE_BLOCK` channels into a sum of one 1x1 convolution per concatenated
    piece. Returns the number rewritten."""
    from openvino import opset13 as ops

    rewritten = 0
    for concat in model.get_ordered_ops():
        if concat.get_type_name() != "Concat" or concat.get_attributes().get("axis") not in (1, -3):
            continue
        consumers = list(concat.output(0).get_target_inputs())
        if len(consumers) != 1 or consumers[0].get_index() != 0:
            continue
        conv = consumers[0].get_node()
        if conv.get_type_name() != "Convolution" or not _is_pointwise(conv.get_attributes()):
            continue
        weight_node = conv.input_value(1).get_node()
        if weight_node.get_type_name() != "Constant":
            continue
        weights = weight_node.get_data()
        pieces = concat.input_values()
        channels = [piece.get_partial_shape()[1] for piece in pieces]
        if weights.ndim != 4 or weights.shape[2:] != (1, 1) or not all(c.is_static for c in channels):
            continue
        sizes = [c.get_length() for c in channels]
        if sum(sizes) != weights.shape[1] or all(size % WHOLE_BLOCK == 0 for size in sizes):
            continue
        total, offset = None, 0
        for piece, size in zip(pieces, sizes, strict=True):
            part = ops.constant(np.ascontiguousarray(weights[:, offset : offset + size]))
            term = ops.convolution(piece, part, [1, 1], [0, 0], [0, 0], [1, 1])
            total = term if total is None else ops.add(total, term)
            offset += size
        conv.output(0).replace(total.output(0))
        rewritten += 1
    if rewritten:
        model.validate_nodes_and_infer_types()
    return rewritten


def _is_pointwise(attributes: dict[str, Any]) -> bool:
    return (
        list(attributes.get("strides", [])) == [1, 1]
        and list(attributes.get("dilations", [])) == [1, 1]
        and not any(attributes.get("pads_begin", [1]))
        and not any(attributes.get("pads_end", [1]))
        and attributes.get("auto_pad", "explicit") in ("explicit", "valid", "notset")
    )
