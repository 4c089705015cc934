"""The cluster tests' fixtures: one real local Ray cluster (a head and a worker node, separate
processes, service.cluster.local) for the session, stopped exactly however the tests end.

The worker node does not see `driver_only_dir` (an empty read-only tmpfs covers it in its own
mount namespace): a storage path some node cannot reach, on one machine. SciFact is read from
../shared/beir/scifact/corpus.jsonl beside the project (never copied); when it is absent the tests
that need it fail saying so, unless RAG_TEST_SKIP_SCIFACT=1 makes them skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from corpus import Document, load_corpus
from service.cluster.local import LocalCluster, start_cluster, stop_cluster

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCIFACT_CORPUS = PROJECT_ROOT.parent / "shared" / "beir" / "scifact" / "corpus.jsonl"
SCIFACT_DOCUMENTS = 300
SKIP_SCIFACT = "RAG_TEST_SKIP_SCIFACT"


@pytest.fixture(scope="session")
def driver_only_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("driver-only")


@pytest.fixture(scope="session")
def local_cluster(driver_only_dir: Path) -> Iterator[LocalCluster]:
    cluster = start_cluster(workers=1, hidden_paths=[driver_only_dir])
    try:
        yield cluster
    finally:
        stop_cluster(cluster)


@pytest.fixture(scope="session")
def scifact_documents() -> list[Document]:
    """The first SCIFACT_DOCUMENTS documents of SciFact's corpus, in file order."""
    if not SCIFACT_CORPUS.is_file():
        if os.environ.get(SKIP_SCIFACT) == "1":
            pytest.skip(f"{SCIFACT_CORPUS} is absent and {SKIP_SCIFACT}=1")
        pytest.fail(
            f"SciFact is needed at {SCIFACT_CORPUS} (BEIR's scifact/corpus.jsonl); "
            f"set {SKIP_SCIFACT}=1 to skip the tests that use it"
        )
    return load_corpus([SCIFACT_CORPUS])[:SCIFACT_DOCUMENTS]
