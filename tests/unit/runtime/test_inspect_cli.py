"""``lwcnn inspect`` as a user runs it: folders and globs, CSV/JSON/pictures, exit statuses, no torch."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from lwcnn.cli import main

REPO = Path(__file__).resolve().parents[3]


def write_images(folder: Path, count: int, size: tuple[int, int] = (48, 48)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        paths.append(folder / f"img{i}.png")
        pixels = np.random.default_rng(i).integers(60, 200, size, dtype=np.uint8)
        Image.fromarray(pixels).save(paths[-1])
    return paths


def test_folder_with_a_corrupt_file(tmp_path, classifier_onnx, capsys):
    write_images(tmp_path / "in", 3)
    write_images(tmp_path / "in" / "sub", 1)  # folders are searched recursively; same stem img0
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "out"
    status = main(["inspect", str(tmp_path / "in"), "--weights", str(classifier_onnx[0]), "--out", str(out)])
    assert status == 3  # an unreadable image: reported, skipped, and the exit status says so
    captured = capsys.readouterr()
    assert "broken.png" in captured.err and "4 image(s) inspected" in captured.err
    with open(out / "results.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 5 and sum(r["verdict"] == "unreadable" for r in rows) == 1
    overlays = sorted(p.name for p in (out / "overlays").iterdir())
    # two images named img0.png (in/ and in/sub/): each gets its own picture, named by a hash of its path
    assert len(overlays) == 4 and overlays[2:] == ["img1.jpg", "img2.jpg"]  # overlays are JPEG
    assert all(name.startswith("img0.png-") for name in overlays[:2])
    assert {Path(r["overlay"]).name for r in rows if r["overlay"]} == set(overlays)
    with Image.open(out / "overlays" / "img1.jpg") as picture:
        assert picture.format == "JPEG" and picture.mode == "RGB"
        assert picture.width > 2 * 48 and picture.height > 48
    report = json.loads((out / "results.json").read_text())
    assert report["summary"]["images"] == 4 and report["summary"]["failed"] == 1


def test_json_glob_and_fail_on_defect(tmp_path, classifier_onnx, capsys):
    write_images(tmp_path / "in", 4)
    args = ["inspect", str(tmp_path / "in" / "img[0-2].png"), "--weights", str(classifier_onnx[0])]
    args += ["--out", str(tmp_path / "out"), "--json", "--no-pictures"]
    assert main([*args, "--ok-class", "good", "--ok-class", "scratch", "--ok-class", "dent"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [Path(r["image"]).name for r in report["results"]] == ["img0.png", "img1.png", "img2.png"]
    assert all(set(r) >= {"verdict", "score", "probabilities", "defective"} for r in report["results"])
    assert report["summary"]["defective"] == 0 and not (tmp_path / "out" / "overlays").exists()
    assert main([*args, "--ok-class", "good"]) in (0, 1)
    report = json.loads(capsys.readouterr().out)
    defective = report["summary"]["defective"]
    assert main([*args, "--ok-class", "good", "--fail-on-defect"]) == (1 if defective else 0)


def test_segmenter_writes_masks_and_boxes(tmp_path, segmenter_onnx, capsys):
    write_images(tmp_path / "in", 2, size=(90, 130))  # larger than the 64x64 working size: tiled
    out = tmp_path / "out"
    args = ["inspect", str(tmp_path / "in"), "--weights", str(segmenter_onnx[0]), "--out", str(out), "--json"]
    assert main([*args, "--threshold", "0.01"]) == 0
    report = json.loads(capsys.readouterr().out)
    for row in report["results"]:
        assert {"area", "boxes", "area_fraction"} <= set(row) and row["defective"] == (row["area"] >= 1)
        with Image.open(row["mask"]) as mask:
            values = set(np.unique(np.asarray(mask)).tolist())
            assert mask.size == (130, 90) and values <= {0, 255}
            assert (np.asarray(mask) > 0).sum() == row["area"]


def test_a_labelled_dataset_folder_is_inspected_without_its_masks(tmp_path, segmenter_onnx, capsys):
    # a user points inspect at their training folder: images/ + masks/ with the same names
    images = write_images(tmp_path / "data" / "images", 3)
    for path in images:
        mask = np.zeros((48, 48), np.uint8)
        mask[5:9, 5:20] = 255
        (tmp_path / "data" / "masks").mkdir(exist_ok=True)
        Image.fromarray(mask).save(tmp_path / "data" / "masks" / path.name)
    weights, out = str(segmenter_onnx[0]), str(tmp_path / "out")
    args = ["inspect", str(tmp_path / "data"), "--weights", weights, "--out", out, "--json"]
    assert main(args) == 0
    captured = capsys.readouterr()
    inspected = [Path(r["image"]) for r in json.loads(captured.out)["results"]]
    assert inspected == images
    assert "left out 3 mask file(s)" in captured.err and "img0.png" in captured.err
    # named as their own folder, the masks are inspected like any image
    assert main([*args[:1], str(tmp_path / "data" / "masks"), *args[2:]]) == 0
    assert len(json.loads(capsys.readouterr().out)["results"]) == 3


def test_overlays_can_be_lossless_png(tmp_path, segmenter_onnx, capsys):
    write_images(tmp_path / "in", 1, size=(70, 80))
    out = tmp_path / "out"
    args = ["inspect", str(tmp_path / "in"), "--weights", str(segmenter_onnx[0]), "--out", str(out), "--json"]
    assert main([*args, "--overlay-format", "png"]) == 0
    row = json.loads(capsys.readouterr().out)["results"][0]
    assert row["overlay"].endswith(".png") and row["mask"].endswith(".png")
    with Image.open(row["overlay"]) as overlay, Image.open(row["mask"]) as mask:
        assert overlay.format == "PNG" and overlay.width > 2 * 80 and mask.size == (80, 70)


def test_no_images_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["inspect", str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 2
    assert "no images" in capsys.readouterr().err


def test_inspect_runs_without_torch(tmp_path):
    """The runtime never imports torch: here importing it fails, as on a runtime-only install."""
    image = write_images(tmp_path / "in", 1, size=(200, 200))[0]
    script = f"""
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "albumentations", "matplotlib", "safetensors"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, NoTorch())
from lwcnn.cli import main
status = main(["inspect", {str(image)!r}, "--out", {str(tmp_path / "out")!r}, "--json"])
assert "torch" not in sys.modules
sys.exit(status)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    # auto: the fastest engine measured here (OpenVINO too where installed), and why
    choice = report["summary"]["engine_choice"]
    assert report["summary"]["engine"] == choice["engine"] in ("onnxruntime", "openvino")
    assert "onnxruntime fp32" in choice["timings_ms"] or "the only engine" in choice["reason"]
    assert report["results"][0]["verdict"]


def test_the_python_api_writes_the_same_results_as_the_command(tmp_path, classifier_onnx):
    from lwcnn.runtime import Inspector
    from lwcnn.runtime.results import inspect_to_folder

    paths = write_images(tmp_path / "in", 3)
    seen = []
    report = inspect_to_folder(Inspector(classifier_onnx[0]), paths, tmp_path / "api", on_result=seen.append)
    main(
        [
            "inspect",
            str(tmp_path / "in"),
            "--weights",
            str(classifier_onnx[0]),
            "--out",
            str(tmp_path / "cli"),
        ]
    )
    from_cli = json.loads((tmp_path / "cli" / "results.json").read_text())
    assert len(seen) == 3 and report == json.loads((tmp_path / "api" / "results.json").read_text())
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("ms", "overlay")} for r in rows]  # noqa: E731
    assert strip(report["results"]) == strip(from_cli["results"])
    assert (tmp_path / "api" / "results.csv").read_text().splitlines()[0].startswith("image,verdict")
    assert all(Path(r["overlay"]).is_file() for r in report["results"])


def test_the_summary_counts_time_per_image_without_opening_the_model(tmp_path, classifier_onnx):
    """``seconds`` and ``first_result_s`` run from ``started`` (lwcnn inspect: before the model is
    opened and --backend auto has measured the engines); ``ms_per_image`` is the inspection alone."""
    import time

    from lwcnn.runtime import Inspector
    from lwcnn.runtime.results import inspect_to_folder

    paths = write_images(tmp_path / "in", 3)
    report = inspect_to_folder(
        Inspector(classifier_onnx[0]),
        paths,
        tmp_path / "out",
        pictures="none",
        started=time.perf_counter() - 5,
    )
    summary = report["summary"]
    assert summary["seconds"] >= 5 and summary["first_result_s"] >= 5
    assert 0 < summary["ms_per_image"] < 1000 * (summary["seconds"] - 5) / 3 + 1
