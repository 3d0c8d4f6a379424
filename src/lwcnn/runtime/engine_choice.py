"""``--backend auto``: the fastest engine and precision for a model on this CPU, measured here, among
those this install offers whose decisions are known to agree with fp32.

Candidates: ONNX Runtime (the file as exported) always; OpenVINO fp32 when the ``openvino`` extra is
installed; OpenVINO bf16 where, in addition, the CPU computes bf16 natively *and* the model's card
holds a check that found every decision on its own validation images the same as fp32's (``lwcnn
calibrate --precision bf16`` writes it, with a threshold calibrated in bf16). Each candidate
inspects a few generated image files of the model's size from file to verdict, with the thread and
worker count it will run with (the whole path, not the forward pass alone: an engine whose threads
crowd out decoding and the decision can be faster alone and slower in the pipeline), interleaved
in rounds (a noisy machine slows all of them alike), and the fastest median wins, unless it beats
ONNX Runtime by less than :data:`MARGIN` (noise is not a reason to switch engines). The
measurement is cached per model file, CPU, thread and worker count and engine versions
(:func:`cache_dir`), so it is paid once per machine (about a second).

OpenVINO is never chosen in a process that has torch loaded (the two crashed a later torch call in
one process: docs/architecture.md); ONNX Runtime is then used and the choice says why.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lwcnn.card import ModelCard
from lwcnn.data.preprocessing import pad_to_stride
from lwcnn.fileio import atomic_write_json
from lwcnn.timing import time_alternately

#: Another engine must be at least this much faster than ONNX Runtime to be chosen.
MARGIN = 0.05
#: Interleaved rounds of the measurement, and forward passes per caller and round.
ROUNDS, RUNS_PER_ROUND = 5, 3
#: Where measurements are cached (else ``$XDG_CACHE_HOME/lwcnn``, else ``~/.cache/lwcnn``).
CACHE_ENV = "LWCNN_CACHE_DIR"
CACHE_FILE = "engine-choices.json"
#: Entries kept in the cache file (the most recent).
CACHE_ENTRIES = 200


@dataclass(frozen=True)
class EngineChoice:
    """What ``auto`` picked: ``engine`` and ``precision``, ``reason`` (one line a user reads), the
    median milliseconds of each candidate measured (``"engine precision"``: ms) and whether they came
    from the cache."""

    engine: str
    precision: str
    reason: str
    timings: dict[str, float] = field(default_factory=dict)
    cached: bool = False
    #: Seconds spent measuring (0 when the choice came from the cache or there was none to make).
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (results.json, ``/v1/model``)."""
        return {
            "engine": self.engine,
            "precision": self.precision,
            "reason": self.reason,
            "timings_ms": {k: round(v, 3) for k, v in self.timings.items()},
            "cached": self.cached,
            "seconds": round(self.seconds, 3),
        }


def candidates(card: ModelCard, file_precision: str) -> tuple[list[tuple[str, str]], list[str]]:
    """The (engine, precision) pairs ``auto`` may choose between for a model, ONNX Runtime first,
    and one line for each engine or precision left out and why."""
    from lwcnn.runtime.openvino_engine import cpu_precisions, openvino_available

    found = [("onnxruntime", file_precision)]
    if not openvino_available():
        return found, ["openvino is not installed (pip install 'lwcnn[openvino]')"]
    if "torch" in sys.modules:
        return found, ["openvino is not used in a process that has torch loaded"]
    if file_precision != "fp32":
        return found, [f"the file is {file_precision}: it runs as exported, in ONNX Runtime"]
    found.append(("openvino", "fp32"))
    notes = []
    offered = cpu_precisions()
    for precision in ("bf16",):
        allowed, why = card.precision_verdict(precision)
        if precision not in offered:
            notes.append(f"this CPU has no native {precision}")
        elif not allowed:
            notes.append(f"{precision} not used: {why}")
        else:
            found.append(("openvino", precision))
    return found, notes


def choose(
    card: ModelCard,
    model_file: Path,
    file_precision: str,
    threads: int | None,
    open_candidate: Callable[[str, str], Any],
    workers: int = 1,
    round_timer: Callable[[Any], tuple[Callable[[], object], int]] | None = None,
) -> tuple[EngineChoice, Any]:
    """The fastest candidate for ``model_file`` (an ONNX file whose card is ``card``) and its
    backend, opened by ``open_candidate(engine, precision)``, for ``workers`` callers at once;
    measured here or read from the cache. ``round_timer(backend)`` gives a function that runs one
    round and the images it handles (the engine passes file-to-verdict rounds); by default,
    forward passes at the working size (:func:`forward_rounds`)."""
    found, notes = candidates(card, file_precision)
    left_out = f"; {'; '.join(notes)}" if notes else ""
    if len(found) == 1:
        engine, precision = found[0]
        return EngineChoice(engine, precision, f"the only engine here{left_out}"), open_candidate(*found[0])
    key = _cache_key(model_file, threads, found, workers)
    entry = _read_cache().get(key)
    if entry is not None and tuple(entry["choice"]) in found:
        engine, precision = entry["choice"]
        timings = {k: float(v) for k, v in entry["timings"].items()}
        choice = EngineChoice(engine, precision, _reason(engine, precision, timings, left_out), timings, True)
        return choice, open_candidate(engine, precision)
    start = time.perf_counter()
    backends = {pair: open_candidate(*pair) for pair in found}
    timer = round_timer or (lambda backend: forward_rounds(backend, _working_input(card), workers))
    timings = measure({pair: timer(backend) for pair, backend in backends.items()})
    named = {f"{e} {p}": ms for (e, p), ms in timings.items()}
    engine, precision = fastest(timings)
    _write_cache(key, {"choice": [engine, precision], "timings": named,
                       "measured": _dt.date.today().isoformat()})  # fmt: skip
    seconds = time.perf_counter() - start
    reason = f"{_reason(engine, precision, named, left_out)}; measured in {seconds:.1f} s, cached"
    choice = EngineChoice(engine, precision, reason, named, seconds=seconds)
    return choice, backends[(engine, precision)]


def fastest(timings: dict[tuple[str, str], float]) -> tuple[str, str]:
    """The candidate with the lowest median, unless it beats the first (ONNX Runtime) by less than
    :data:`MARGIN`."""
    pairs = list(timings)
    best = min(pairs, key=lambda pair: timings[pair])
    return best if timings[best] < (1.0 - MARGIN) * timings[pairs[0]] else pairs[0]


def measure(rounds: dict[tuple[str, str], tuple[Callable[[], object], int]]) -> dict[tuple[str, str], float]:
    """Each candidate's median milliseconds per image over :data:`ROUNDS` rounds of ``(run_round,
    images it handles)``, the candidates interleaved round by round after one warm-up round each
    (:func:`lwcnn.timing.time_alternately`)."""
    runners = {pair: run_round for pair, (run_round, _) in rounds.items()}
    times = time_alternately(runners, runs=ROUNDS, warmup=1, slice_runs=1)
    return {pair: float(np.median(times[pair])) / rounds[pair][1] for pair in rounds}


def forward_rounds(backend: Any, batch: np.ndarray, workers: int = 1) -> tuple[Callable[[], object], int]:
    """A round of :data:`RUNS_PER_ROUND` forward passes of ``batch`` by each of ``workers`` callers
    at once, and the images it runs."""
    from concurrent.futures import ThreadPoolExecutor

    def run_round() -> None:
        if workers == 1:
            for _ in range(RUNS_PER_ROUND):
                backend.run(batch)
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(lambda _: [backend.run(batch) for _ in range(RUNS_PER_ROUND)], range(workers)))

    return run_round, RUNS_PER_ROUND * workers


def _working_input(card: ModelCard) -> np.ndarray:
    """A batch of one at the model's working size (a segmenter's padded to its stride), as the
    engines see it."""
    shape = (1, card.preprocessing.channels, *card.preprocessing.size)
    batch = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    return pad_to_stride(batch, axes=(-2, -1), stride=card.network_stride) if card.task == "seg" else batch


def _reason(engine: str, precision: str, timings: dict[str, float], left_out: str) -> str:
    chosen = f"{engine} {precision}"
    others = ", ".join(f"{name} {ms:.2f} ms" for name, ms in timings.items() if name != chosen)
    return f"fastest measured here ({chosen} {timings[chosen]:.2f} ms per image; {others}){left_out}"


def cache_dir() -> Path:
    """Where measurements are cached: ``$LWCNN_CACHE_DIR``, else ``$XDG_CACHE_HOME/lwcnn``, else
    ``~/.cache/lwcnn``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lwcnn"


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``; elsewhere what :mod:`platform` says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cache_key(model_file: Path, threads: int | None, found: list[tuple[str, str]], workers: int) -> str:
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in ("onnxruntime", "openvino"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    described = {
        "file": hashlib.sha256(model_file.read_bytes()).hexdigest(),
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "threads": threads,
        "workers": workers,
        "versions": versions,
        "candidates": found,
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:32]


def _read_cache() -> dict[str, Any]:
    try:
        data = json.loads((cache_dir() / CACHE_FILE).read_text())
    except (OSError, ValueError):  # none yet, or torn: measure again
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(key: str, entry: dict[str, Any]) -> None:
    """Add an entry (atomically; a cache that cannot be written only means measuring next time)."""
    data = _read_cache()
    data.pop(key, None)
    data[key] = entry
    kept = dict(list(data.items())[-CACHE_ENTRIES:])
    try:
        cache_dir().mkdir(parents=True, exist_ok=True)
        atomic_write_json(cache_dir() / CACHE_FILE, kept)
    except OSError:
        pass
