"""Ranking metrics and paired significance tests, computed by ranx (no hand-written formulas).

For one query with ranked list d_1, d_2, ... and relevance grades rel(d) (0 when unjudged):

* ``hit_rate@k`` = 1 if some d_i with i <= k has rel(d_i) > 0, else 0 (the eval sets' "hit@k");
* ``recall@k`` = |{i <= k : rel(d_i) > 0}| / |{d : rel(d) > 0}|;
* ``mrr@10`` = 1 / (first i <= 10 with rel(d_i) > 0), or 0;
* ``ndcg@10`` = DCG@10 / IDCG@10 with DCG@10 = sum_{i<=10} rel(d_i) / log2(i + 1) and IDCG@10
  the DCG of the ideal ordering (ranx's trec_eval-compatible definition);

each averaged over queries. A query with no retrieved document scores 0 on all of them.

Significance: Fisher's randomisation test (two-sided, paired by query; Smucker et al., CIKM 2007)
of a mode against a baseline, or the paired Student t-test.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import numpy as np
import numpy.typing as npt
from numba.core.errors import NumbaWarning
from ranx import Qrels, Run
from ranx import evaluate as ranx_evaluate
from ranx.statistical_tests import fisher_randomization_test, paired_student_t_test

from eval.report import Significance

PROJECT_METRICS = ("hit_rate@1", "hit_rate@3", "hit_rate@5", "mrr@10", "ndcg@10")
BEIR_METRICS = ("recall@1", "recall@3", "recall@5", "mrr@10", "ndcg@10", "recall@100")
PerQuery = dict[str, npt.NDArray[np.float64]]  # metric -> one score per judged query, in query-id order


def per_query_scores(
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Mapping[str, float]],
    metrics: Sequence[str],
) -> PerQuery:
    """Each metric for each query of `qrels` (sorted by query id; missing run entries score 0)."""
    query_ids = sorted(qrels)
    judged = {q: dict(qrels[q]) for q in query_ids}
    # ranx cannot hold an empty ranking: give such queries a sentinel document no qrel judges.
    ranked = {q: dict(run.get(q) or {}) or {"\0no-result": 0.0} for q in query_ids}
    with _quiet_numba():
        scores = ranx_evaluate(Qrels(judged), Run(ranked), list(metrics), return_mean=False)
    if len(metrics) == 1:
        scores = {metrics[0]: scores}
    return {metric: np.asarray(scores[metric], dtype=np.float64) for metric in metrics}


def mean_scores(scores: PerQuery) -> dict[str, float]:
    return {metric: float(values.mean()) if len(values) else 0.0 for metric, values in scores.items()}


def paired_test(
    baseline: npt.NDArray[np.float64],
    treatment: npt.NDArray[np.float64],
    test: str = "fisher",
    max_p: float = 0.05,
    permutations: int = 10_000,
    seed: int = 42,
) -> Significance:
    """Whether `treatment` differs from `baseline` (same queries, same order) at level `max_p`."""
    if len(baseline) != len(treatment):
        raise ValueError("paired scores must cover the same queries")
    if test not in ("fisher", "student"):
        raise ValueError(f"unknown test {test!r}: use 'fisher' or 'student'")
    differences = treatment - baseline
    if len(differences) == 0 or np.ptp(differences) == 0:
        # Every query moved by the same amount (often 0): no variance to test, the answer is exact.
        differs = bool(len(differences)) and bool(differences[0] != 0)
        return Significance(0.0 if differs else 1.0, differs)
    with _quiet_numba():
        if test == "fisher":
            p_value, significant = fisher_randomization_test(baseline, treatment, permutations, max_p, seed)
        else:
            p_value, significant = paired_student_t_test(baseline, treatment, max_p)
    return Significance(float(p_value), bool(significant))


def ranking_from_order(ids: Sequence[str]) -> dict[str, float]:
    """Scores that reproduce the given order exactly (ties in real scores must not reorder it)."""
    ranking: dict[str, float] = {}
    for position, doc_id in enumerate(ids):
        ranking.setdefault(doc_id, float(len(ids) - position))
    return ranking


@contextmanager
def _quiet_numba() -> Iterator[None]:
    # ranx's numba kernels warn about integer casts while compiling (first use on a machine);
    # the casts are of small counts and harmless, and the warnings would fail strict test runs.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumbaWarning)
        yield
