"""The evaluation report: one row per retrieval mode, as a text table, JSON, and TREC run files.

Column names are the eval sets' own (hit@k, MRR@10, ...); a value marked `*` differs from the
baseline mode (`dense`) at the chosen significance level in a paired test, and the p-values are in
the JSON. Left out: computing anything (see `eval.runner` and `eval.metrics`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from index.storage.files import write_atomically

LABELS = {
    "hit_rate@1": "hit@1",
    "hit_rate@3": "hit@3",
    "hit_rate@5": "hit@5",
    "mrr@10": "MRR@10",
    "ndcg@10": "nDCG@10",
    "recall@1": "R@1",
    "recall@3": "R@3",
    "recall@5": "R@5",
    "recall@100": "R@100",
    "answer_accuracy": "answer sent.",
}


@dataclass(frozen=True)
class Significance:
    p_value: float
    significant: bool


@dataclass
class ModeResult:
    mode: str
    metrics: dict[str, float]
    significance: dict[str, Significance] = field(default_factory=dict)  # vs the baseline mode
    abstention: dict[str, int] = field(default_factory=dict)  # project sets only


@dataclass
class EvalReport:
    name: str
    kind: str  # "project" or "beir"
    queries: int
    baseline: str
    test: str
    max_p: float
    modes: list[ModeResult]
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def mode(self, name: str) -> ModeResult:
        return next(result for result in self.modes if result.mode == name)


def render_table(report: EvalReport) -> str:
    """A Markdown table (readable as plain text too) with a one-line caption."""
    metric_names = list(report.modes[0].metrics) if report.modes else []
    header = ["mode", *(LABELS.get(name, name) for name in metric_names)]
    if report.kind == "project":
        header += ["unanswerable flagged", "answerable flagged"]
    rows = [header, ["---"] * len(header)]
    for result in report.modes:
        row = [result.mode]
        for name in metric_names:
            mark = "*" if result.significance.get(name, Significance(1.0, False)).significant else ""
            row.append(f"{result.metrics[name]:.3f}{mark}")
        if report.kind == "project":
            a = result.abstention
            kinds = [
                key.removeprefix("kind:")
                for key in a
                if key.startswith("kind:") and not key.endswith("_flagged")
            ]
            detail = ", ".join(f"{kind} {a[f'kind:{kind}_flagged']}/{a[f'kind:{kind}']}" for kind in kinds)
            row += [
                f"{a['unanswerable_flagged']}/{a['unanswerable']}"
                + (f" ({detail})" if len(kinds) > 1 else ""),
                f"{a['answerable_flagged']}/{a['answerable']}",
            ]
        rows.append(row)
    caption = (
        f"{report.name}: {report.queries} questions. `*`: differs from `{report.baseline}` "
        f"(paired {report.test} test, p < {report.max_p})."
    )
    return caption + "\n\n" + "\n".join("| " + " | ".join(row) + " |" for row in rows)


def write_json(path: Path, reports: Sequence[EvalReport]) -> None:
    payload = {"reports": [report.to_dict() for report in reports]}
    atomic_write_text(path, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")


def write_trec_run(path: Path, rankings: Mapping[str, Sequence[tuple[str, float]]], tag: str) -> None:
    """`qid Q0 docid rank score tag` lines, ranks from 1, in the order given (best first)."""
    lines = [
        f"{query_id} Q0 {doc_id} {rank} {score:.6f} {tag}\n"
        for query_id, ranked in rankings.items()
        for rank, (doc_id, score) in enumerate(ranked, start=1)
    ]
    atomic_write_text(path, "".join(lines))


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, text.encode("utf-8"))
