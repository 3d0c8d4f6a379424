"""ONNX export: ONNX Runtime reproduces PyTorch for every model of the factory."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from lwcnn.checkpoints import load_model
from lwcnn.cli import main
from lwcnn.data.images import read_image
from lwcnn.data.preprocessing import Preprocessing
from lwcnn.export import ONNX_METADATA_KEY, export_onnx
from lwcnn.models import create_model, list_models
from tests.synthetic import SHARED_DATASETS


def session(data: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def assert_parity(model, data: bytes, x: torch.Tensor) -> None:
    with torch.no_grad():
        expected = model(x).numpy()
    got = session(data).run(None, {"image": x.numpy()})[0]
    assert got.shape == expected.shape
    # within 1e-4 relative to the output's scale
    assert np.max(np.abs(got - expected)) <= 1e-4 * max(1.0, float(np.max(np.abs(expected))))


def with_statistics(model):
    """Non-trivial BN statistics, so that folding them into convolutions is really exercised."""
    torch.manual_seed(0)
    with torch.no_grad():
        model.train()(torch.randn(4, model.spec.in_channels, 64, 64) * 2 + 0.5)
    return model.eval()


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("task", ["cls", "seg"])
def test_parity_for_every_factory_model(name, task):
    model = with_statistics(
        create_model(name, task=task, num_classes=4 if task == "cls" else 2, in_channels=3)
    )
    data = export_onnx(model, None)
    for shape in ((1, 3, 64, 64), (2, 3, 75, 101)):  # dynamic batch and a different, odd size
        assert_parity(model, data, torch.randn(*shape))


def test_file_is_self_contained_with_metadata(tmp_path):
    model = with_statistics(create_model("lw@0.35", task="seg", in_channels=1))
    path = tmp_path / "seg.onnx"
    export_onnx(
        model,
        path,
        {"task": "seg", "threshold": 0.5, "min_area": 20, "preprocessing": {"channels": 1, "scale": 0.5},
         "split": {"x": 1}},
    )  # fmt: skip
    assert [p.name for p in tmp_path.iterdir()] == ["seg.onnx"]  # no external data file
    proto = onnx.load(path)
    meta = json.loads({p.key: p.value for p in proto.metadata_props}[ONNX_METADATA_KEY])
    assert meta["task"] == "seg" and meta["threshold"] == 0.5 and meta["output_stride"] == 8
    assert meta["min_area"] == 20 and meta["preprocessing"]["scale"] == 0.5  # the engine's decision and scale
    assert meta["model"]["in_channels"] == 1 and "split" not in meta
    inputs = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in inputs] == ["batch", 1, "height", "width"]


def test_export_command_with_the_bundled_model_on_real_input(tmp_path, capsys):
    out = tmp_path / "neu.onnx"
    assert main(["export", "--weights", "neu", "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "lw@0.35"
    model, meta = load_model("neu")
    preprocessing = Preprocessing.from_dict(meta["preprocessing"])
    image_path = SHARED_DATASETS / "neu" / "IMAGES" / "scratches_1.jpg"
    if image_path.exists():
        image = read_image(image_path, preprocessing.channels)
    else:  # without ../shared: a generated steel-like texture
        image = np.random.default_rng(0).integers(60, 200, (200, 200, 1), dtype=np.uint8)
    x = torch.from_numpy(preprocessing(image))[None]
    assert_parity(model, out.read_bytes(), x)
    stored = json.loads({p.key: p.value for p in onnx.load(out).metadata_props}[ONNX_METADATA_KEY])
    assert stored["classes"] == meta["classes"] and stored["preprocessing"] == meta["preprocessing"]


def optimized_graph(data: bytes, tmp_path) -> onnx.GraphProto:
    """The graph ONNX Runtime actually runs on this CPU (all optimisations, blocked layout included)."""
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    options.log_severity_level = 3
    ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    return onnx.load(options.optimized_model_filepath).graph


@pytest.mark.parametrize("task", ["cls", "seg"])
def test_lw_export_stays_in_onnx_runtimes_blocked_layout(task, tmp_path):
    # The speed of the export rests on this (docs/models.md): no Tile, and no conversion out of ONNX
    # Runtime's blocked layout inside the backbone. The first export (Tile, reorders around it) fails it.
    model = with_statistics(create_model("lw@0.35", task=task, num_classes=6 if task == "cls" else 2))
    nodes = optimized_graph(export_onnx(model, None), tmp_path).node
    assert not [n.name for n in nodes if n.op_type == "Tile"]
    reorders = [n for n in nodes if n.op_type.startswith("Reorder")]
    if task == "cls":
        assert len(reorders) <= 1, [n.name for n in reorders]  # the head's output, if any
    consumers: dict[str, list[str]] = {}
    for node in nodes:
        for name in node.input:
            consumers.setdefault(name, []).append(node.name)
    for reorder in reorders:  # any left feed the decoder or the outputs, never a backbone layer
        fed = [name for output in reorder.output for name in consumers.get(output, [])]
        assert not [name for name in fed if name.startswith("/backbone/")], (reorder.name, fed)


def test_a_classifier_pooling_by_avgmax_exports_its_logits_and_maps():
    model = with_statistics(create_model("lw@0.35", task="cls", num_classes=3, in_channels=3, pool="avgmax"))
    x = torch.randn(2, 3, 75, 101)
    with torch.no_grad():
        logits, maps = model.logits_and_class_maps(x)
    got_logits, got_maps = session(export_onnx(model, None)).run(None, {"image": x.numpy()})
    assert np.allclose(got_logits, logits.numpy(), atol=1e-4)
    assert np.allclose(got_maps, maps.numpy(), atol=1e-4)
