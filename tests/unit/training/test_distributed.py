"""Training under torchrun: two CPU processes (gloo) take exactly the steps of one process with the
same global batch (split into the same two micro-batches), and ranks that disagree stop at once."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lwcnn.data.sampling import BalancedSampler
from lwcnn.data.synth import synthesize_dagm

from ...synthetic import make_class_folders

REPO = Path(__file__).resolve().parents[3]
SETTINGS = [
    "model.name=lw@0.35",
    "data.input_size=[32,32]",
    "data.layout=folders",
    "data.split={train: 6, val: 2, test: 4}",
    "augment.per_class=8",
    "augment.transforms=[]",
    "train.batch_size=8",
    "train.workers=0",
    "train.threads=1",
    "train.lr=0.003",
    "train.epochs=2",
]


#: Two processes on this machine, as a user launches them.
TORCHRUN = [
    sys.executable,
    "-m",
    "torch.distributed.run",
    "--standalone",
    "--nproc_per_node=2",
    "-m",
    "lwcnn",
]


def lwcnn(
    *args: str, env: dict | None = None, launcher: list[str] | None = None
) -> subprocess.CompletedProcess:
    command = [*(launcher or [sys.executable, "-m", "lwcnn"]), *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)


def assert_same_weights(run_a, run_b) -> None:
    """The learned tensors of two runs' last models agree (BN running statistics are rank 0's
    under DDP, which broadcasts them, so they are not compared)."""
    a, b = load_file(run_a / "last.safetensors"), load_file(run_b / "last.safetensors")
    weights = [k for k in a if "running" not in k and "num_batches" not in k]
    assert weights and all(torch.allclose(a[k], b[k], atol=1e-6) for k in weights)


def test_two_processes_equal_one_with_two_micro_batches(tmp_path):
    data = make_class_folders(tmp_path / "data")
    common = [*SETTINGS, f"data.root={data}"]
    two = lwcnn("train", *common, f"out={tmp_path / 'two'}", "--json", launcher=TORCHRUN)
    assert two.returncode == 0, two.stderr[-2000:]
    reports = [json.loads(line) for line in two.stdout.splitlines() if line.startswith("{")]
    assert len(reports) == 1  # rank 0 reports, the other rank stays quiet
    one = lwcnn("train", *common, "train.accumulate=2", f"out={tmp_path / 'one'}", "--json")
    assert one.returncode == 0, one.stderr[-2000:]
    assert_same_weights(tmp_path / "two", tmp_path / "one")
    meta = json.loads((tmp_path / "two" / "last.json").read_text())
    assert (
        meta["metrics"]["step"] == json.loads((tmp_path / "one" / "last.json").read_text())["metrics"]["step"]
    )


SEGMENTATION = [
    "task=seg",
    "model.name=lw@0.35",
    "data.input_size=[64,64]",
    "data.crop=[48,48]",
    "data.split={val: 0.25}",
    "augment.per_epoch=16",
    "augment.transforms=[]",
    "gradual.zoom_steps=0.25",
    "gradual.clean_from=0.5",
    "train.batch_size=8",
    "train.workers=0",
    "train.threads=1",
    "train.lr=0.003",
    "train.epochs=2",
]


def test_segmentation_two_processes_equal_one_with_two_micro_batches(tmp_path):
    """The gradual-training schedule (zoom, whole, all) is the same distributed: the sampler gives
    each rank its half of every global batch, crops included."""
    data = synthesize_dagm(tmp_path / "data", classes=1, train=12, test=4, defective_fraction=0.5, size=64)
    common = [*SEGMENTATION, f"data.root={data}"]
    two = lwcnn("train", *common, f"out={tmp_path / 'two'}", "--json", launcher=TORCHRUN)
    assert two.returncode == 0, two.stderr[-2000:]
    one = lwcnn("train", *common, "train.accumulate=2", f"out={tmp_path / 'one'}", "--json")
    assert one.returncode == 0, one.stderr[-2000:]
    assert_same_weights(tmp_path / "two", tmp_path / "one")
    phases = [row.split(",")[3] for row in (tmp_path / "two" / "metrics.csv").read_text().splitlines()[1:]]
    assert phases == ["zoom", "all"]


def test_a_killed_distributed_run_resumes_to_the_same_weights(tmp_path):
    """Kill every process of a torchrun launch once an epoch is saved; ``--resume`` under torchrun
    (every rank reads resume.pt) ends with the weights of a run that was never stopped."""
    data = make_class_folders(tmp_path / "data")
    common = [*SETTINGS, f"data.root={data}", "train.epochs=6"]
    straight = lwcnn("train", *common, f"out={tmp_path / 'straight'}", "--json", launcher=TORCHRUN)
    assert straight.returncode == 0, straight.stderr[-2000:]
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        [*TORCHRUN, "train", *common, f"out={killed}"],
        cwd=REPO,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not (killed / "resume.pt").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    done = len((killed / "metrics.csv").read_text().splitlines()) - 1
    assert 1 <= done < 6
    resumed = lwcnn("train", "--resume", str(killed), "--json", launcher=TORCHRUN)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    rows = (killed / "metrics.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == [1, 2, 3, 4, 5, 6]
    a, b = load_file(tmp_path / "straight" / "last.safetensors"), load_file(killed / "last.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a if "num_batches" not in k)


def test_ranks_that_disagree_on_the_config_stop_with_a_clear_error(tmp_path):
    data = make_class_folders(tmp_path / "data")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    processes = []
    for rank, lr in ((0, "0.003"), (1, "0.001")):  # a multi-node launch with mismatched configs
        env = {**os.environ, "WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": "0",
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}  # fmt: skip
        args = [*SETTINGS, f"data.root={data}", f"train.lr={lr}", f"out={tmp_path / 'run'}"]
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "lwcnn", "train", *args],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for process in processes:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 2
        assert "rank 1 disagrees with rank 0 on the config" in err
    assert not (tmp_path / "run" / "resume.pt").exists()


def test_distributed_sampler_shares_each_global_batch():
    labels = [0] * 10 + [1] * 6
    single = BalancedSampler(labels, per_class=8, seed=3)
    single.set_epoch(2)
    ranks = [
        BalancedSampler(labels, per_class=8, seed=3, rank=r, world_size=2, global_batch=8) for r in (0, 1)
    ]
    for sampler in ranks:
        sampler.set_epoch(2)
    order, (first, second) = single.indices(), [s.indices() for s in ranks]
    assert len(first) == len(second) == len(ranks[0]) == 8
    for k in range(2):  # global batch k = rank 0's 4 images, then rank 1's
        assert order[8 * k : 8 * k + 8] == first[4 * k : 4 * k + 4] + second[4 * k : 4 * k + 4]
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        BalancedSampler(labels, per_class=8, seed=3, rank=0, world_size=3, global_batch=8)
