"""``lwcnn inspect`` against careless and hostile input: odd file names, symlink loops, unusable
output folders, clashing picture names, interrupted runs, huge images, ambiguous model names."""

from __future__ import annotations

import codecs
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lwcnn.cli import main
from lwcnn.fileio import printable_path
from lwcnn.runtime import Inspector
from lwcnn.runtime.results import InspectionOutput, picture_names

from .test_inspect_cli import write_images

REPO = Path(__file__).resolve().parents[3]


def test_a_file_name_that_is_not_utf8_is_inspected_and_written_escaped(tmp_path, classifier_onnx, capsys):
    folder = tmp_path / "in"
    write_images(folder, 2)
    odd = os.fsdecode(os.path.join(os.fsencode(folder), b"h_\xff\xfe.png"))
    Image.fromarray(np.full((48, 48), 90, np.uint8)).save(odd, format="PNG")
    out = tmp_path / "out"
    assert main(["inspect", str(folder), "--weights", str(classifier_onnx[0]), "--out", str(out)]) == 0
    report = json.loads((out / "results.json").read_text(encoding="utf-8"))
    names = [r["image"] for r in report["results"]]
    assert len(names) == 3 and report["summary"]["failed"] == 0
    escaped = next(n for n in names if "h_" in n)
    assert escaped.endswith("h_\\xff\\xfe.png")
    assert codecs.escape_decode(escaped.encode())[0] == os.fsencode(odd)  # lossless
    assert escaped in (out / "results.csv").read_text(encoding="utf-8")
    assert all(Path(r["overlay"]).is_file() for r in report["results"])
    assert "h_\\xff\\xfe.png" in capsys.readouterr().out


def test_printable_path_keeps_utf8_names_and_doubles_backslashes_only_when_escaping():
    assert printable_path("Prüfteil/a\\b.png") == "Prüfteil/a\\b.png"
    odd = os.fsdecode(b"a\\b\xff.png")
    assert printable_path(odd) == "a\\\\b\\xff.png"
    assert codecs.escape_decode(printable_path(odd).encode())[0] == os.fsencode(odd)


def test_a_symlink_loop_is_a_skipped_input_not_a_crash(tmp_path, classifier_onnx, capsys):
    write_images(tmp_path / "in", 2)
    loop = tmp_path / "loop.png"
    loop.symlink_to(loop)
    out = tmp_path / "out"
    args = [
        "inspect",
        str(tmp_path / "in"),
        str(loop),
        "--weights",
        str(classifier_onnx[0]),
        "--out",
        str(out),
    ]
    assert main(args) == 3
    report = json.loads((out / "results.json").read_text())
    assert report["summary"]["images"] == 2 and report["failures"][0]["image"] == str(loop)
    assert "loop.png: cannot be read" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["file", "under-a-file"])
def test_an_unusable_out_fails_before_any_image_is_inspected(
    tmp_path, classifier_onnx, capsys, monkeypatch, kind
):
    write_images(tmp_path / "in", 2)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    out = blocker if kind == "file" else blocker / "out"
    inspected = []
    original = Inspector.inspect_paths
    monkeypatch.setattr(
        Inspector, "inspect_paths", lambda self, *a, **k: inspected.append(1) or original(self, *a, **k)
    )
    assert (
        main(["inspect", str(tmp_path / "in"), "--weights", str(classifier_onnx[0]), "--out", str(out)]) == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(blocker) in err[0] and not inspected


def test_a_busy_out_is_refused(tmp_path, classifier_onnx, capsys):
    write_images(tmp_path / "in", 1)
    out = tmp_path / "out"
    with InspectionOutput(out):  # another run holds it
        assert (
            main(["inspect", str(tmp_path / "in"), "--weights", str(classifier_onnx[0]), "--out", str(out)])
            == 2
        )
        assert "in use by another lwcnn inspect run" in capsys.readouterr().err
    assert (
        main(["inspect", str(tmp_path / "in"), "--weights", str(classifier_onnx[0]), "--out", str(out)]) == 0
    )


def test_picture_names_are_unique_and_stable():
    images = ["a/x.jpg", "a/x.png", "a/x_2.png", "a/y.png", "b/y.png", "c/z.png"]
    names = picture_names(images)
    assert len(set(names)) == len(images)
    assert names[:3] == ["x.jpg", "x.png", "x_2"] and names[5] == "z"
    assert names[3].startswith("y.png-") and names[4].startswith("y.png-")
    assert picture_names(images) == names  # the same inputs, the same names
    twice = picture_names(["a/x.png", "a/x.png"])  # the same path given twice
    assert twice[0].startswith("x.png-") and twice[1] == twice[0] + "-2"


def test_clashing_stems_get_their_own_pictures(tmp_path, classifier_onnx):
    folder = tmp_path / "in"
    folder.mkdir()
    for name, value in (("x.jpg", 40), ("x.png", 120), ("x_2.png", 200)):
        Image.fromarray(np.full((48, 48), value, np.uint8)).save(folder / name)
    out = tmp_path / "out"
    main(["inspect", str(folder), "--weights", str(classifier_onnx[0]), "--out", str(out)])
    rows = json.loads((out / "results.json").read_text())["results"]
    overlays = [r["overlay"] for r in rows]
    assert len(set(overlays)) == 3 and all(Path(o).is_file() for o in overlays)
    for row in rows:  # each picture shows its own image (left half, below the caption)
        with Image.open(row["overlay"]) as picture:
            left = np.asarray(picture.convert("L"))[30, 10]
        value = {"x.jpg": 40, "x.png": 120, "x_2.png": 200}[Path(row["image"]).name]
        assert abs(int(left) - value) <= 3


def test_a_second_run_replaces_the_first_runs_pictures(tmp_path, classifier_onnx):
    first, second = tmp_path / "first", tmp_path / "second"
    write_images(first, 3)
    write_images(second, 1)
    out = tmp_path / "out"
    weights = str(classifier_onnx[0])
    main(["inspect", str(first), "--weights", weights, "--out", str(out)])
    assert len(list((out / "overlays").iterdir())) == 3
    main(["inspect", str(second), "--weights", weights, "--out", str(out)])
    rows = json.loads((out / "results.json").read_text())["results"]
    assert len(rows) == 1 and sorted(p.name for p in (out / "overlays").iterdir()) == ["img0.jpg"]
    assert [p.name for p in out.iterdir() if p.name.startswith(".lwcnn-staging")] == []


def test_an_interrupted_run_leaves_the_previous_results_and_pictures_as_they_were(
    tmp_path, classifier_onnx, monkeypatch
):
    folder = tmp_path / "in"
    write_images(folder, 3)
    out = tmp_path / "out"
    weights = str(classifier_onnx[0])
    main(["inspect", str(folder), "--weights", weights, "--out", str(out)])
    before = {p.name: p.read_bytes() for p in (out / "overlays").iterdir()}
    results = (out / "results.json").read_bytes()
    for path in folder.iterdir():  # other images under the same names: other pictures
        Image.fromarray(np.full((48, 48), 250, np.uint8)).save(path)
    calls = []

    def interrupt_after_two(self, *args, **kwargs):
        for result in original(self, *args, **kwargs):
            calls.append(1)
            if len(calls) == 3:
                raise KeyboardInterrupt
            yield result

    original = Inspector.inspect_paths
    monkeypatch.setattr(Inspector, "inspect_paths", interrupt_after_two)
    assert main(["inspect", str(folder), "--weights", weights, "--out", str(out)]) == 130
    assert (out / "results.json").read_bytes() == results
    assert {p.name: p.read_bytes() for p in (out / "overlays").iterdir()} == before
    assert [p.name for p in out.iterdir() if p.name.startswith(".lwcnn-staging")] == []


def test_picture_folders_that_are_not_ours_are_not_touched(tmp_path, classifier_onnx, capsys):
    write_images(tmp_path / "in", 1)
    out = tmp_path / "out"
    (out / "overlays").mkdir(parents=True)
    (out / "overlays" / "holiday.png").write_bytes(b"mine")
    assert (
        main(["inspect", str(tmp_path / "in"), "--weights", str(classifier_onnx[0]), "--out", str(out)]) == 2
    )
    assert "no lwcnn inspect run wrote" in capsys.readouterr().err
    assert (out / "overlays" / "holiday.png").read_bytes() == b"mine"


def test_the_cli_refuses_images_over_its_pixel_limit_from_the_header(tmp_path, classifier_onnx, capsys):
    folder = tmp_path / "in"
    write_images(folder, 1)
    Image.new("L", (3000, 2000)).save(folder / "large.png")
    out = tmp_path / "out"
    args = ["inspect", str(folder), "--weights", str(classifier_onnx[0]), "--out", str(out)]
    assert main([*args, "--max-pixels", "5000000"]) == 3
    assert "large.png: 3000x2000 is more than the 5000000 pixels allowed" in capsys.readouterr().err
    assert main(args) == 0  # under the default (40 M, as the service's)
    assert main([*args, "--max-pixels", "0"]) == 2


def _peak_rss_mb_of(code: str) -> float:
    """Peak RSS of a fresh Python running ``code`` (the limit of this test's own process would
    include everything the test session has loaded)."""
    report = "\nimport resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    done = subprocess.run(
        [sys.executable, "-c", code + report],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip().splitlines()[-1]) / 1024


def test_a_large_image_costs_a_bounded_amount_of_memory(tmp_path):
    """A 6000 x 6000 gray PNG of a few KB (36 M pixels, under the 40 M limit) through the bundled
    segmenter with pictures: before, 3.8 GB; a bound of 1.2 GB leaves room for the machine, not
    for the old full-size float maps (each 144 MB; the old overlay alone held over 1 GB)."""
    image = tmp_path / "bomb.png"
    Image.new("L", (6000, 6000), 128).save(image, optimize=True)
    assert image.stat().st_size < 100_000
    code = f"""
from lwcnn.runtime import Inspector
from lwcnn.runtime.overlay import overlay_image, png_bytes
inspector = Inspector("kolektorsdd", threads=1)
result = next(iter(inspector.inspect_paths([{str(image)!r}], keep_pixels=True)))
assert result.size == (6000, 6000), result
picture = overlay_image(result.pixels, result)
assert max(picture.size) <= 2 * 2048 + 4 and len(png_bytes(result.mask)) > 0
"""
    baseline = _peak_rss_mb_of("from lwcnn.runtime import Inspector\nInspector('kolektorsdd', threads=1)")
    assert _peak_rss_mb_of(code) - baseline < 1200


def test_large_images_keep_the_same_verdicts_and_regions_as_whole_maps():
    """The strip-wise path gives what one full-size resize gives (scale != 1: the bundled model)."""
    inspector = Inspector("kolektorsdd", threads=1)
    rng = np.random.default_rng(3)
    image = (120 + 40 * rng.standard_normal((700, 420))).clip(0, 255).astype(np.uint8)[:, :, None]
    image[300:320, 100:300] = 10  # a dark scratch
    result = inspector.inspect(image)
    probability = inspector.defect_probability(image)
    mask = probability > inspector.threshold
    assert np.array_equal(result.mask, mask) and result.score == float(probability.max())
    assert result.area == int(mask.sum())


def test_a_bundled_name_that_is_also_a_folder_is_refused_as_ambiguous(tmp_path, monkeypatch, capsys):
    write_images(tmp_path / "in", 1)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "neu").mkdir()  # a run folder (or anything) named like the bundled model
    assert main(["inspect", "in", "--weights", "neu", "--out", "out"]) == 2
    err = capsys.readouterr().err
    assert "names both a bundled model and the path ./neu" in err and "bundled:neu" in err
    assert main(["inspect", "in", "--weights", "bundled:neu", "--out", "out"]) == 0
    assert main(["inspect", "in", "--out", "out2"]) == 0  # no --weights: the bundled default, unambiguous


def test_inspect_writes_results_while_a_reader_polls_them(tmp_path, classifier_onnx):
    """Results are replaced atomically: a reader never sees a half-written results.json."""
    write_images(tmp_path / "in", 4)
    out = tmp_path / "out"
    weights = str(classifier_onnx[0])
    main(["inspect", str(tmp_path / "in"), "--weights", weights, "--out", str(out)])
    bad: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                json.loads((out / "results.json").read_text())
            except ValueError as error:
                bad.append(str(error))

    thread = threading.Thread(target=reader)
    thread.start()
    for _ in range(3):
        main(["inspect", str(tmp_path / "in"), "--weights", weights, "--out", str(out)])
    stop.set()
    thread.join()
    assert not bad


def test_pictures_of_defective_images_only(tmp_path, segmenter_onnx):
    folder = tmp_path / "in"
    write_images(folder, 6, size=(64, 64))
    out = tmp_path / "out"
    args = ["inspect", str(folder), "--weights", str(segmenter_onnx[0]), "--out", str(out)]
    main([*args, "--pictures", "none"])
    scores = sorted(r["score"] for r in json.loads((out / "results.json").read_text())["results"])
    assert scores[0] < scores[-1]
    threshold = str((scores[2] + scores[3]) / 2)  # half of the images defective, half OK
    assert not (out / "overlays").exists()
    main([*args, "--pictures", "defective", "--threshold", threshold])
    rows = json.loads((out / "results.json").read_text())["results"]
    defective = {Path(r["image"]).stem for r in rows if r["defective"]}
    assert 0 < len(defective) < len(rows)
    assert {Path(r["overlay"]).stem for r in rows if "overlay" in r} == defective
    assert (
        {p.stem for p in (out / "overlays").iterdir()}
        == defective
        == {p.stem for p in (out / "masks").iterdir()}
    )
