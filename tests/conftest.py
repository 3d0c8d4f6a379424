"""Settings for the whole suite.

``--backend auto`` caches what it measured under ``$LWCNN_CACHE_DIR``: the suite (and the lwcnn
processes it starts, which inherit the variable) uses a folder of its own, never the user's cache.
torch is imported first so that ``auto`` in this process never loads OpenVINO, which must not share
a process with the torch tests (docs/architecture.md); OpenVINO's own tests run in child processes.
"""

from __future__ import annotations

import os
import tempfile

os.environ["LWCNN_CACHE_DIR"] = tempfile.mkdtemp(prefix="lwcnn-test-cache-")

try:
    import torch  # noqa: F401
except ImportError:  # a runtime-only install: no torch tests either
    pass
