"""Whether an engine and precision decide a model's own images as ONNX Runtime fp32 does: what
``--backend auto`` requires of a precision before it runs it (``lwcnn calibrate --precision``
stores the same check in a trained model's card; here it is only printed, for bundled models too).

    python -m benchmarks.precision_agreement --weights kolektorsdd --data ../shared/datasets/kolektorsdd \
        [--part test] [--engine openvino] [--precision fp32|bf16] [--json]

A segmenter calibrated in fp32 decides, in the candidate precision, at a threshold calibrated again
the same way (its calibration's split and escape-rate target); a classifier by its top class.
"""

from __future__ import annotations

import argparse
import json

from lwcnn.evaluation.precision import check_precision


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--part", default="test")
    parser.add_argument("--engine", default="openvino")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    record = check_precision(args.weights, args.data, args.part, args.precision, args.engine, store=False)
    if args.json:
        print(json.dumps(record))
        return
    same = record["n"] - record["differ_count"]
    scores = (
        f", largest score difference {record['max_score_difference']:.1e}" if "threshold" in record else ""
    )
    print(
        f"{args.weights}: {args.engine} {args.precision} against onnxruntime fp32 on {record['n']} "
        f"{args.part} images: {same} decisions the same, {record['differ_count']} not{scores}"
        + (f" ({', '.join(record['differ'])})" if record["differ"] else "")
    )


if __name__ == "__main__":
    main()
