# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install run build test test-cluster cluster cluster-down lint typecheck eval bench bench-segments bench-cluster clean system-packages loadtest

# torch==2.13.0 first: it resolves to the CPU build on disk; any other request pulls CUDA wheels.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev,cluster]'
	touch $(STAMP)

install: $(STAMP)

build: install
	$(BIN)/rag build

run: build
	$(BIN)/rag serve

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

# Debian's chromium for the browser test (Playwright's own browser download is not used) and wrk,
# the load generator of the benchmarks (eval/bench/wrk.py; tested in `make test`).
system-packages:
	@test -x /usr/bin/chromium -a -x /usr/bin/wrk || (apt-get update && apt-get install -y chromium wrk)

# The suite in TEST_WORKERS processes (pytest-xdist): most tests wait on servers, subprocesses and
# disk as much as on a core, so 2 workers take ~6 min on 2 cores where one takes ~12.
TEST_WORKERS ?= 2
test: lint typecheck system-packages
	$(BIN)/pytest --numprocesses $(TEST_WORKERS)

# The tests on a real local Ray cluster (head + worker node processes, stopped exactly): a cluster
# build of the bundled corpus and 300 SciFact documents (from $(SCIFACT), never copied; absent:
# they fail unless RAG_TEST_SKIP_SCIFACT=1) ranks as one built here; bad addresses and storage
# paths; the sharded service on Ray Serve answers as the single-process one. About 9 min on 2 cores.
test-cluster: install
	$(BIN)/pytest -m cluster tests/cluster

# A local Ray cluster (a head and one worker node, each in its own PID namespace; needs root for
# `unshare`), the bundled corpus built on it as a sharded index in $(CLUSTER_INDEX) (if needed),
# then the sharded service deployed on it, serving on RAG_HOST:RAG_PORT (127.0.0.1:8000), its named
# collections in $(CLUSTER_COLLECTIONS) (apart from `make run`'s, which are ordinary indexes). It runs
# until `make cluster-down`, which stops exactly what `make cluster` started (.rag/cluster.json).
CLUSTER_INDEX ?= .rag/sharded
CLUSTER_COLLECTIONS ?= .rag/sharded-collections
CLUSTER_SHARDS ?= 3
cluster: install
	$(BIN)/rag cluster up
	RAG_INDEX_DIR=$(CLUSTER_INDEX) $(BIN)/rag build --shards $(CLUSTER_SHARDS) --cluster "$$($(BIN)/rag cluster address)"
	RAG_INDEX_DIR=$(CLUSTER_INDEX) RAG_COLLECTIONS_DIR=$(CLUSTER_COLLECTIONS) \
		$(BIN)/rag serve --cluster "$$($(BIN)/rag cluster address)"

cluster-down: install
	$(BIN)/rag cluster down

# Queries at concurrency 1, 4 and 16 (10 s each at most) while documents are added and removed,
# on 127.0.0.1 with a fresh index and the real model; fails on any error or lost change.
loadtest: install
	$(BIN)/python -m eval.loadtest --concurrency 1,4,16 --seconds 10

# Speed against the floor (the embedding model alone): HTTP latency and throughput at concurrency
# 1/8/32, build throughput (both sentence-vector modes; SciFact: its first 2000 documents), the
# current code's HTTP figures beside a baseline's (newest v* tag before HEAD, else origin/main or
# main; BENCH_ARGS="--baseline REF"), index growth to 1M chunks, hybrid search over 100k chunks with
# and without filters (the first run writes its two indexes, ~2 GB), the int8 ONNX backend. About 30 min
# on 2 quiet cores; writes eval/reports/bench.{json,md,png}. SciFact is read from SCIFACT, never copied. More options
# (python -m eval.bench --help) through BENCH_ARGS, e.g. BENCH_ARGS="--scifact-docs 0" (all of it);
# BENCH_ARGS=--quick is a ~3 min smoke run that writes .rag/bench/quick-report instead.
SCIFACT ?= ../shared/beir/scifact
BENCH_ARGS ?=
bench: install system-packages
	$(BIN)/python -m eval.bench --scifact $(SCIFACT) $(BENCH_ARGS)

# The segmented index (fake 384-dimensional embedder for scale, except the build): one article
# POSTed at 5k/50k/200k documents, 10 min of ingest under 8 query clients, 10 segments against
# one, bytes and memory per chunk at 100k and 1M chunks, `rag build` of SciFact, documents/s of
# 8 concurrent writers against 1 (and segments against the server's ceiling). 1-2 h (the first
# run also builds the cached base indexes, 7.5 GB) and up to ~20 GB of disk under .rag/bench; writes eval/reports/segments/bench.{json,md}, updating only the
# phases run. Some phases: SEGMENT_PHASES="--phase writes"; a smoke run: BENCH_ARGS=--quick
# (to .rag/bench/quick-report).
SEGMENT_PHASES ?= --phase writes --phase ingest --phase segments --phase footprint --phase build --phase writers
bench-segments: install system-packages
	$(BIN)/python -m eval.bench --scifact $(SCIFACT) $(SEGMENT_PHASES) $(BENCH_ARGS)

# Issue 22's benchmark on a local Ray cluster (a head and a worker node, started and stopped
# exactly; needs root for `unshare`): `rag build --cluster` with 2 embedding actors against 1
# and against `rag build` here, the sharded service (`rag serve --cluster`) against the
# single-process one at concurrency 1 and 32, and writes during ingest on both, over the bundled
# corpus (SEED, read where it lies) plus 1000 SciFact documents. Updates the cluster section of
# eval/reports/bench.{json,md}; BENCH_ARGS=--quick is a smoke run (to .rag/bench/quick-report).
SEED ?= ../shared/seed-articles
bench-cluster: install system-packages
	$(BIN)/python -m eval.bench --phase cluster --scifact $(SCIFACT) --seed $(SEED) $(BENCH_ARGS)

# Retrieval quality: every mode on the project set (bundled corpus), on the two SciFact question
# sets (fitted and held out, each over its own abstracts) and on SciFact's train split (read from
# SCIFACT, never copied), paired tests against dense; then the answerability trade-off tables.
# Writes reports/eval/*.{md,json} and TREC runs. The first run embeds SciFact once (cached in
# .rag/eval; ~40 min on 2 busy cores).
EVAL_OUT := reports/eval
eval: build
	mkdir -p $(EVAL_OUT)
	$(BIN)/rag eval eval/sets/seed-articles.jsonl --json $(EVAL_OUT)/seed.json --save-run $(EVAL_OUT)/runs-seed > $(EVAL_OUT)/seed.md
	for set in scifact-fit scifact-heldout; do \
	  $(BIN)/rag eval eval/sets/$$set.jsonl --corpus $(SCIFACT)/corpus.jsonl --quiet --json $(EVAL_OUT)/$$set.json > $(EVAL_OUT)/$$set.md || exit 1; \
	done
	$(BIN)/rag eval beir $(SCIFACT) --split train --json $(EVAL_OUT)/scifact.json --save-run $(EVAL_OUT)/runs-scifact > $(EVAL_OUT)/scifact.md
	$(BIN)/rag eval calibrate --fit eval/sets/seed-articles.jsonl --fit eval/sets/scifact-fit.jsonl:$(SCIFACT)/corpus.jsonl \
	  --check eval/sets/scifact-heldout.jsonl:$(SCIFACT)/corpus.jsonl > $(EVAL_OUT)/answerability.md
	cat $(EVAL_OUT)/seed.md $(EVAL_OUT)/scifact-fit.md $(EVAL_OUT)/scifact-heldout.md $(EVAL_OUT)/scifact.md $(EVAL_OUT)/answerability.md

clean:
	rm -rf .rag .pytest_cache .mypy_cache .ruff_cache
