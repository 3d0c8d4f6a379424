"""OpenVINO checks that run in a child process without torch (test_openvino_engine.py says why):
each function raises AssertionError on a failure and prints what it measured."""

from __future__ import annotations

import json
import sys

import numpy as np


def parity(*paths: str) -> None:
    """OpenVINO gives ONNX Runtime's outputs for each ONNX file, on a new shape, then a known one."""
    from lwcnn.runtime.backends import OnnxRuntimeBackend
    from lwcnn.runtime.openvino_engine import OpenVinoBackend

    assert "torch" not in sys.modules
    for path in paths:
        openvino, onnxruntime = OpenVinoBackend(path, threads=1), OnnxRuntimeBackend(path, threads=1)
        assert openvino.precision == "fp32" and openvino.card.task == onnxruntime.card.task
        channels = onnxruntime.card.preprocessing.channels
        for shape in ((1, channels, 64, 64), (2, channels, 75, 101), (1, channels, 64, 64)):
            x = np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)
            got, expected = openvino.run(x), onnxruntime.run(x)
            assert got.keys() == expected.keys(), path
            for key, value in expected.items():
                assert got[key].shape == value.shape, (path, key)
                scale = max(1.0, float(np.max(np.abs(value))))
                assert np.max(np.abs(got[key] - value)) <= 1e-4 * scale, (path, key, shape)
    print(json.dumps({"checked": len(paths)}))


def bundled_decisions() -> None:
    """The bundled models decide as in ONNX Runtime (verdict, score, area)."""
    from lwcnn.runtime import Inspector

    rng = np.random.default_rng(0)
    for weights, size in (("neu", (200, 200)), ("kolektorsdd", (1260, 500))):
        onnxruntime = Inspector(weights, threads=1)
        openvino = Inspector(weights, backend="openvino", threads=1)
        assert openvino.engine == "openvino fp32" and onnxruntime.engine == "onnxruntime fp32"
        for _ in range(3):
            image = rng.integers(40, 220, (*size, 1), dtype=np.uint8)
            image[100:140, 90:110] = 255  # a bright blob
            a, b = onnxruntime.inspect(image), openvino.inspect(image)
            assert a.verdict == b.verdict and abs(a.score - b.score) < 1e-4
            if a.task == "seg":
                assert abs(a.area - b.area) <= 0.001 * a.size[0] * a.size[1]


def refusals(broken: str) -> None:
    """A precision the CPU lacks, a precision for another engine, an unknown one, a broken file:
    each a one-line error of the right kind."""
    from lwcnn.errors import ConfigError, ModelError
    from lwcnn.runtime import Inspector
    from lwcnn.runtime.openvino_engine import OpenVinoBackend, cpu_precisions

    def refused(kind: type, text: str, make) -> None:
        try:
            make()
        except kind as error:
            assert text in str(error), str(error)
        else:
            raise AssertionError(f"not refused: {text}")

    if "bf16" in cpu_precisions():
        assert Inspector("neu", backend="openvino", precision="bf16").engine == "openvino bf16"
    else:
        refused(ConfigError, "no native bf16", lambda: Inspector("neu", backend="openvino", precision="bf16"))
    refused(ConfigError, "needs the openvino backend", lambda: Inspector("neu", precision="bf16"))
    refused(ConfigError, "precision must be one of", lambda: OpenVinoBackend("x.onnx", precision="int4"))
    refused(ModelError, f"{broken}: not an ONNX model OpenVINO can read",
            lambda: Inspector(broken, backend="openvino"))  # fmt: skip


def auto_choice() -> None:
    """``auto`` in a process without torch: both engines measured, the fastest used, the second
    Inspector reads the choice from the cache, and it decides as ONNX Runtime does."""
    from lwcnn.runtime import Inspector

    assert "torch" not in sys.modules
    first = Inspector("kolektorsdd", backend="auto", threads=1)
    choice = first.engine_choice
    assert set(choice.timings) >= {"onnxruntime fp32", "openvino fp32"}, choice
    assert f"{choice.engine} {choice.precision}" == first.engine and not choice.cached
    fastest = min(choice.timings, key=choice.timings.get)
    assert first.engine in (fastest, "onnxruntime fp32")  # the fastest, or ONNX Runtime within the margin
    second = Inspector("kolektorsdd", backend="auto", threads=1)
    assert second.engine_choice.cached and second.engine == first.engine
    image = np.random.default_rng(0).integers(40, 220, (1260, 500, 1), dtype=np.uint8)
    a, b = Inspector("kolektorsdd", threads=1).inspect(image), second.inspect(image)
    # bf16 (chosen where the CPU has it and the card's check allows it) keeps about three digits
    tolerance = 1e-4 if choice.precision == "fp32" else 2e-2
    assert a.verdict == b.verdict and abs(a.score - b.score) < tolerance, (choice.engine, a.score, b.score)
    print(json.dumps(choice.to_dict()))


def concurrent_callers(folder: str) -> None:
    """Workers through one OpenVINO backend (as ``inspect --workers`` and the service's workers call
    it), on image sizes compiled while others infer: every image comes back, as one worker answers
    it. Concurrent calls into OpenVINO's Python objects once deadlocked now and then (3 of 18 runs
    over 30 KolektorSDD images; this check did not catch it in 5 runs of the old code, so it is no
    proof, but a hang here ends in the threads' stacks from the watchdog)."""
    import faulthandler
    from pathlib import Path

    from PIL import Image

    from lwcnn.runtime import Inspector

    faulthandler.dump_traceback_later(240, exit=True)
    rng = np.random.default_rng(0)
    paths = []
    for index in range(40):
        path = Path(folder) / f"part{index:02d}.jpg"  # sizes as a line's: a few, so compiled anew
        image = rng.integers(60, 200, (1200 + 40 * (index % 6), 500), dtype=np.uint8)
        image[300 + index : 310 + index, 100:300] = 255
        Image.fromarray(image).save(path)
        paths.append(path)
    one = [
        (r.verdict, r.area)
        for r in Inspector("kolektorsdd", backend="openvino", threads=1).inspect_paths(paths)
    ]
    for _ in range(4):
        pooled = Inspector("kolektorsdd", backend="openvino", threads=1, workers=3)
        assert [(r.verdict, r.area) for r in pooled.inspect_paths(paths)] == one
    faulthandler.cancel_dump_traceback_later()
    print(json.dumps({"images": len(paths)}))


def split_projections(path: str, expected: str) -> None:
    """The graph rewrite for OpenVINO turns the expected number of concatenations into sums of 1x1
    convolutions (the LW blocks'; not the decoder's whole-block one) and keeps the outputs."""
    import openvino as ov

    from lwcnn.runtime.openvino_engine import cpu_config
    from lwcnn.runtime.openvino_graph import split_concat_projections

    assert "torch" not in sys.modules
    core, shape = ov.Core(), [1, 3, 96, 128]
    plain = core.read_model(path)
    plain.reshape({plain.inputs[0]: shape})
    rewritten = plain.clone()
    assert split_concat_projections(rewritten) == int(expected)
    assert split_concat_projections(rewritten) == 0  # nothing left to rewrite
    concats = [n for n in rewritten.get_ordered_ops() if n.get_type_name() == "Concat"
               and n.get_attributes().get("axis") == 1]  # fmt: skip
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    outputs = [core.compile_model(m, "CPU", cpu_config(1, "fp32")).create_infer_request().infer({0: x})[0]
               for m in (plain, rewritten)]  # fmt: skip
    scale = max(1.0, float(np.max(np.abs(outputs[0]))))
    assert np.max(np.abs(outputs[1] - outputs[0])) <= 1e-5 * scale
    print(json.dumps({"rewritten": int(expected), "concatenations_left": len(concats)}))
