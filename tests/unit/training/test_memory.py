"""Training keeps the memory a step frees for the next step (training/memory.py): a large tensor
allocated again after it was freed costs no new page faults. Run in a child process, so that the
allocator setting does not leak into the rest of the suite."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

CHILD = """
import json, resource, sys, torch
from lwcnn.training.memory import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else None
faults = []
for _ in range(5):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = torch.ones(16 * 2**20)  # 64 MiB, above any mmap threshold of glibc
    del t
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"kept": kept, "faults": faults}))
"""


def faults(mode: str) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator: Linux only")
def test_a_freed_step_is_reused_without_page_faults():
    default, kept = faults("default"), faults("keep")
    if not kept["kept"]:
        pytest.skip("this C library has no mallopt (not glibc)")
    pages = 64 * 2**20 // 4096
    # glibc's default: every 64 MiB tensor is mapped afresh and every page faults in
    assert min(default["faults"][2:]) > pages // 2, default
    # kept: the first allocations grow the heap, the later ones reuse it
    assert max(kept["faults"][2:]) < pages // 20, kept
