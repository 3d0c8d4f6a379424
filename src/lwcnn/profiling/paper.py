"""The paper's size columns (Tables 3-5) next to ours, for the same configurations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lwcnn.profiling import ProfileResult, profile_model
from lwcnn.tables import Column


@dataclass(frozen=True)
class PaperRow:
    """One configuration as the paper reports it (t: ms on an Intel i3-4010U, TensorFlow)."""

    table: str
    model: str
    task: str
    classes: int
    input: tuple[int, int, int]
    flops_m: float
    params_m: float
    time_ms: float


#: Table 3: Textures, 64 classes; Table 4: NEU, 6 classes; Table 5: DAGM segmentation, our decoder.
PAPER_ROWS: tuple[PaperRow, ...] = (
    PaperRow("3", "shufflenet@0.25", "cls", 64, (3, 331, 331), 196, 0.19, 254),
    PaperRow("3", "mobilenetv2@0.35", "cls", 64, (3, 331, 331), 267, 0.48, 259),
    PaperRow("3", "mobilenetv2@1.4", "cls", 64, (3, 331, 331), 2684, 4.43, 695),
    PaperRow("3", "resnetv2-50", "cls", 64, (3, 331, 331), 16082, 23.65, 893),
    PaperRow("3", "lw@0.35", "cls", 64, (3, 331, 331), 76, 0.06, 75),
    PaperRow("3", "lw@0.75", "cls", 64, (3, 331, 331), 246, 0.14, 140),
    PaperRow("4", "shufflenet@0.25", "cls", 6, (3, 200, 200), 52, 0.19, 126),
    PaperRow("4", "mobilenetv2@0.35", "cls", 6, (3, 200, 200), 102, 0.40, 116),
    PaperRow("4", "lw@0.35", "cls", 6, (3, 200, 200), 28, 0.04, 29),
    PaperRow("5", "shufflenet@0.25", "seg", 2, (3, 512, 512), 1126, 0.64, 371),
    PaperRow("5", "mobilenetv2@0.35", "seg", 2, (3, 512, 512), 1630, 1.40, 591),
    PaperRow("5", "lw@0.35", "seg", 2, (3, 512, 512), 923, 0.55, 217),
    PaperRow("5", "lw@0.75", "seg", 2, (3, 512, 512), 1312, 0.60, 369),
)

#: Columns for :func:`lwcnn.tables.format_table`.
PAPER_COLUMNS: tuple[Column, ...] = (
    ("table", "table"),
    ("model", "model"),
    ("task", "task"),
    ("classes", "classes"),
    ("input", "input"),
    ("paper_flops_m", "F paper (M)", ".0f"),
    ("flops_m", "F ours (M)", ".1f"),
    ("flops_delta_pct", "dF %", "+.1f"),
    ("paper_params_m", "W paper (M)", ".2f"),
    ("params_m", "W ours (M)", ".4f"),
    ("params_delta_pct", "dW %", "+.1f"),
    ("paper_time_ms", "t paper i3 (ms)", ".0f"),
    ("latency_ms", "t ours (ms)", ".1f"),
)


def compare_with_paper(
    latency: bool = True,
    threads: int = 1,
    warmup: int = 3,
    runs: int = 20,
    progress: Callable[[PaperRow], None] | None = None,
) -> list[dict[str, Any]]:
    """Profile every configuration of :data:`PAPER_ROWS`; one dict per row with the paper's figures
    (``paper_*``), ours, and the relative differences in percent. ``progress`` is called after each row."""
    rows = []
    for paper in PAPER_ROWS:
        ours: ProfileResult = profile_model(
            paper.model,
            paper.task,
            paper.classes,
            paper.input,
            threads=threads,
            latency=latency,
            warmup=warmup,
            runs=runs,
        )
        rows.append(
            {
                "table": paper.table,
                **ours.to_dict(),
                "paper_flops_m": paper.flops_m,
                "paper_params_m": paper.params_m,
                "paper_time_ms": paper.time_ms,
                "flops_delta_pct": 100.0 * (ours.flops_m / paper.flops_m - 1.0),
                "params_delta_pct": 100.0 * (ours.params_m / paper.params_m - 1.0),
            }
        )
        if progress is not None:
            progress(paper)
    return rows
