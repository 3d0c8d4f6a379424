"""The ``lwcnn`` command line as a user calls it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lwcnn.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lwcnn", *args], capture_output=True, text=True, timeout=300)


def test_profile_json_has_sizes_and_latency():
    done = run_cli(
        "profile", "lw@0.35", "--task", "cls", "--classes", "6", "--input", "3x200x200",
        "--threads", "1", "--runs", "3", "--warmup", "1", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["params_m"] == pytest.approx(0.04, rel=0.05)
    assert result["flops_m"] == pytest.approx(28, rel=0.05)
    assert result["latency_ms"] > 0
    assert result["model"] == "lw@0.35" and result["threads"] == 1


def test_profile_segmenter_table(capsys):
    assert main(["profile", "lw@0.35", "--task", "seg", "--input", "3x512x512", "--no-latency"]) == 0
    out = capsys.readouterr().out
    assert "lw@0.35" in out and "FLOPs (M)" in out and "2 x multiply-accumulates" in out


def test_paper_table_json(capsys):
    assert main(["profile", "--no-latency", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 13
    assert {"model", "paper_flops_m", "flops_m", "paper_params_m", "params_m"} <= set(rows[0])


def test_models_lists_families(capsys):
    assert main(["models", "--json"]) == 0
    families = {f["family"] for f in json.loads(capsys.readouterr().out)["families"]}
    assert families == {"lw", "mobilenetv2", "shufflenet", "resnetv2-50"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["profile", "vgg16", "--classes", "6"], "unknown model 'vgg16'"),
        (["profile", "lw@0.35"], "--classes is required"),
        (["profile", "lw@0.35", "--classes", "6", "--input", "200x200"], "CxHxW"),
        (["profile", "lw@0.35", "--classes", "6", "--threads", "0"], "--threads"),
    ],
)
def test_bad_arguments_give_one_line_error_and_exit_2(args, message):
    done = run_cli(*args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in done.stderr


def test_console_script_is_installed():
    exe = Path(sys.executable).with_name("lwcnn")  # the script sits beside the venv's python
    done = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("lwcnn ")


def test_import_lwcnn_does_not_import_torch():
    code = "import sys, lwcnn; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False"


def test_bench_json_rows(capsys):
    args = ["bench", "--models", "lw@0.35", "--tasks", "cls", "--threads", "1", "--batch", "1", "2"]
    assert main([*args, "--runs", "4", "--budget", "1", "--end-to-end-images", "0", "--rounds", "2",
                 "--json"]) == 0  # fmt: skip
    rows = json.loads(capsys.readouterr().out)
    from lwcnn.profiling.bench import available_engines

    engines = [e for e in available_engines() if e != "onnxruntime-int8-decoder"]  # that one: segmenters
    assert {"onnxruntime", "onnxruntime-int8", "torch"} <= set(engines)
    assert {(r["engine"], r["batch"]) for r in rows} == {(e, b) for e in engines for b in (1, 2)}
    for row in rows:
        assert {"model", "task", "engine", "threads", "batch", "latency_ms", "images_per_s"} <= set(row)
        assert row["runs"] == 4  # --runs shared by two interleaved rounds
        assert (
            row["latency_ms"] > 0
            and abs(row["images_per_s"] - 1000 * row["batch"] / row["latency_ms"]) < 1e-6
        )


def test_bench_end_to_end_rows_sit_beside_the_forward_pass(capsys):
    """File to verdict for the bundled models, with and without pictures, over the forward pass of
    the same engine in the same rounds; the segmenter's tiled 2048 x 2048 image in megapixels/s."""
    args = ["bench", "--models", "lw@0.35", "--tasks", "seg", "cls", "--engines", "onnxruntime",
            "--threads", "1", "--batch", "1", "--runs", "2", "--budget", "0.1",
            "--end-to-end-images", "3", "--rounds", "2", "--json"]  # fmt: skip
    assert main(args) == 0
    rows = [r for r in json.loads(capsys.readouterr().out) if r["model"].endswith("(bundled)")]
    whats = {(r["model"], r["what"]) for r in rows}
    for model in ("kolektorsdd (bundled)", "neu (bundled)"):
        for pictures in ("none", "defective", "all", "all, PNG overlays"):
            assert (model, f"file to verdict, pictures {pictures}") in whats
        assert (model, "forward pass") in whats
    assert ("kolektorsdd (bundled)", "one 2048x2048 image, tiled") in whats
    for row in rows:
        assert row["runs"] == 2 and row["latency_ms"] > 0 and row["engine"] == "onnxruntime fp32"
        if row["what"] == "forward pass":
            assert row["ratio_to_forward"] == 1.0
        elif "tiled" in row["what"]:
            assert row["megapixels_per_s"] == pytest.approx(2048**2 / 1e3 / row["latency_ms"])
        else:  # reading, deciding and writing results cost more than the forward pass alone
            assert row["ratio_to_forward"] > 1.0


def _raising(error: BaseException):
    def run(args):
        raise error

    return run


def test_errors_of_the_users_files_are_one_line_and_bugs_keep_their_traceback(tmp_path, capsys, monkeypatch):
    """An LwcnnError (even one that is also an OSError) or an OS error about a named file: one line,
    exit 2. Anything else is a bug: its traceback goes through (and LWCNN_DEBUG=1 shows them all)."""
    from lwcnn.cli import inspect as inspect_command
    from lwcnn.errors import MissingError, RunExistsError

    errors = (
        RunExistsError("runs/x: already holds a run"),
        MissingError("runs/x/resume.pt: nothing to resume"),
        FileNotFoundError(2, "No such file or directory", "my.yaml"),
    )
    for error in errors:
        monkeypatch.setattr(inspect_command, "run", _raising(error))
        assert main(["inspect", "x"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("lwcnn inspect: error: ") and "Traceback" not in err[0]
    monkeypatch.setattr(inspect_command, "run", _raising(ValueError("operands could not be broadcast")))
    with pytest.raises(ValueError, match="broadcast"):  # a bug (a NumPy shape mismatch): not one line
        main(["inspect", "x"])
    monkeypatch.setenv("LWCNN_DEBUG", "1")
    monkeypatch.setattr(inspect_command, "run", _raising(RunExistsError("runs/x: taken")))
    assert main(["inspect", "x"]) == 2
    assert "Traceback" in capsys.readouterr().err
