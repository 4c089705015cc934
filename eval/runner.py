"""Running an eval set against a backend in every mode and collecting the report.

Project sets: a passage is relevant when it contains one of the question's gold answers (after
light normalisation of case, quotes, dashes and spaces), so each question has one relevant item,
"its answer", and its rank is that of the first passage containing it. Unanswerable questions
are left out of the ranking metrics and scored on abstention instead: how many are flagged
(`answerable` false) and how many answerable questions are wrongly flagged. Answer-sentence
accuracy: the share of answerable questions whose first passage's answer sentence covers at
least half of a gold answer (its longest common substring with the sentence).

BEIR sets: relevance per document from the qrels; a document's rank is that of its best passage,
except in the document-fusion modes (`hybrid-doc`, `hybrid-doc-prf`, see `eval.backends`), which
fuse the signals per document.

Left out: building indexes (`eval.beir`), the metrics themselves (`eval.metrics`), printing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from difflib import SequenceMatcher
from pathlib import Path

from eval.backends import Answer, Backend, DocumentMode
from eval.metrics import (
    BEIR_METRICS,
    PROJECT_METRICS,
    PerQuery,
    mean_scores,
    paired_test,
    per_query_scores,
    ranking_from_order,
)
from eval.report import EvalReport, ModeResult, write_trec_run
from eval.sets import BeirSet, Question
from index.search.modes import Mode

ANSWER_ID = "answer"  # the one relevant item of a project-set question
_TRANSLATE = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "-"})
_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    return _SPACES.sub(" ", text.translate(_TRANSLATE)).strip().casefold()


def contains_answer(text: str, answers: Sequence[str]) -> bool:
    passage = normalise(text)
    return any(normalise(answer) in passage for answer in answers)


def covers_answer(sentence: str, answers: Sequence[str], share: float = 0.5) -> bool:
    """True when `sentence` holds at least `share` of some gold answer as one contiguous piece."""
    sentence = normalise(sentence)
    for answer in map(normalise, answers):
        match = SequenceMatcher(None, sentence, answer, autojunk=False).find_longest_match()
        if answer and match.size >= share * len(answer):
            return True
    return False


def evaluate_project_set(
    name: str,
    questions: Sequence[Question],
    backend: Backend,
    modes: Sequence[Mode],
    k: int = 10,
    baseline: Mode = Mode.DENSE,
    test: str = "fisher",
    max_p: float = 0.05,
    save_run_dir: Path | None = None,
    progress: bool = False,
) -> EvalReport:
    texts = [q.question for q in questions]
    answerable = [q for q in questions if q.answerable]
    qrels = {q.id: {ANSWER_ID: 1} for q in answerable}
    per_mode: dict[str, PerQuery] = {}
    results: list[ModeResult] = []
    for mode in modes:
        answers = dict(zip((q.id for q in questions), backend.answer(texts, mode, k, progress), strict=True))
        run = {
            q.id: ranking_from_order(
                [
                    ANSWER_ID if contains_answer(p.text, q.answers) else p.chunk_id
                    for p in answers[q.id].passages
                ]
            )
            for q in answerable
        }
        per_mode[mode] = per_query_scores(qrels, run, PROJECT_METRICS)
        metrics = mean_scores(per_mode[mode])
        metrics["answer_accuracy"] = _answer_accuracy(answerable, answers)
        results.append(ModeResult(mode, metrics, abstention=_abstention(questions, answers)))
        if save_run_dir is not None:
            rankings = {qid: [(p.chunk_id, p.score) for p in a.passages] for qid, a in answers.items()}
            write_trec_run(save_run_dir / f"{mode}.trec", rankings, mode)
    _add_significance(results, per_mode, baseline, test, max_p)
    return EvalReport(name, "project", len(questions), baseline, test, max_p, results)


def evaluate_beir_set(
    name: str,
    data: BeirSet,
    backend: Backend,
    modes: Sequence[DocumentMode],
    depth: int = 100,
    baseline: Mode = Mode.DENSE,
    test: str = "fisher",
    max_p: float = 0.05,
    save_run_dir: Path | None = None,
    progress: bool = False,
) -> EvalReport:
    query_ids = sorted(data.queries)
    texts = [data.queries[qid] for qid in query_ids]
    per_mode: dict[str, PerQuery] = {}
    results: list[ModeResult] = []
    for mode in modes:
        rankings = dict(zip(query_ids, backend.document_rankings(texts, mode, depth, progress), strict=True))
        run = {qid: ranking_from_order(ranked.ids) for qid, ranked in rankings.items()}
        per_mode[mode] = per_query_scores(data.qrels, run, BEIR_METRICS)
        results.append(ModeResult(mode, mean_scores(per_mode[mode])))
        if save_run_dir is not None:
            pairs = {qid: list(zip(r.ids, r.scores, strict=True)) for qid, r in rankings.items()}
            write_trec_run(save_run_dir / f"{mode}.trec", pairs, mode)
    _add_significance(results, per_mode, baseline, test, max_p)
    return EvalReport(name, "beir", len(query_ids), baseline, test, max_p, results)


def _answer_accuracy(answerable: Sequence[Question], answers: dict[str, Answer]) -> float:
    if not answerable:
        return 0.0
    correct = sum(
        1
        for q in answerable
        if answers[q.id].passages and covers_answer(answers[q.id].passages[0].answer, q.answers)
    )
    return correct / len(answerable)


def _abstention(questions: Sequence[Question], answers: dict[str, Answer]) -> dict[str, int]:
    """Flagged (`answerable` false) and total, for answerable and unanswerable questions, and
    for each kind of unanswerable question the set distinguishes (`off-topic`, ...)."""
    unanswerable = [q for q in questions if not q.answerable]
    answerable = [q for q in questions if q.answerable]
    counts = {
        "unanswerable": len(unanswerable),
        "unanswerable_flagged": sum(1 for q in unanswerable if not answers[q.id].answerable),
        "answerable": len(answerable),
        "answerable_flagged": sum(1 for q in answerable if not answers[q.id].answerable),
    }
    for kind in sorted({q.kind for q in unanswerable if q.kind}):
        of_kind = [q for q in unanswerable if q.kind == kind]
        counts[f"kind:{kind}"] = len(of_kind)
        counts[f"kind:{kind}_flagged"] = sum(1 for q in of_kind if not answers[q.id].answerable)
    return counts


def _add_significance(
    results: list[ModeResult], per_mode: dict[str, PerQuery], baseline: str, test: str, max_p: float
) -> None:
    if baseline not in per_mode:
        return
    base = per_mode[baseline]
    for result in results:
        if result.mode == baseline:
            continue
        scores = per_mode[result.mode]
        result.significance = {
            metric: paired_test(base[metric], scores[metric], test, max_p) for metric in base
        }
