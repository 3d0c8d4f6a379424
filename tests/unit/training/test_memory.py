"""Training keeps the memory a step frees for the next step (training/memory.py): the large
tensors of a training step are allocated again from memory the process already has, instead of
fresh pages the kernel must map and zero (page faults). Run in child processes, so that the
allocator setting does not leak into the rest of the suite."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

CHILD = """
import json, resource, sys, torch
from lwcnn.models import create_model
from lwcnn.training.memory import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else None
torch.manual_seed(0)
torch.set_num_threads(1)
model = create_model("lw@0.35", task="cls", num_classes=2, in_channels=1).train()
optimizer = torch.optim.Adam(model.parameters(), 1e-3)
# 64 x 16 x 96 x 96 floats: 38 MB, above the largest mmap threshold glibc adapts to (32 MB)
x, y = torch.randn(64, 1, 192, 192), torch.randint(0, 2, (64,))
faults = []
for _ in range(6):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    loss = torch.nn.functional.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"kept": kept, "faults": faults}))
"""


def step_faults(mode: str) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator: Linux only")
def test_training_steps_reuse_freed_memory_instead_of_faulting_in_new_pages():
    default, kept = step_faults("default"), step_faults("keep")
    if not kept["kept"]:
        pytest.skip("this C library has no mallopt (not glibc)")
    # the steps after the first three (which grow the heap: two or three of them, seen both ways):
    # glibc's default maps every large activation afresh each step, kept memory is reused
    assert sum(default["faults"][3:]) > 20 * max(1, sum(kept["faults"][3:])), (default, kept)
