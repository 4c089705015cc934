"""The question encoder the service uses: the model's float32 ONNX copy gives the model's own
vectors, is exported once per cache, and anything wrong with it means the model itself."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from index.embedding import HashingEmbedder, SentenceTransformerEmbedder
from index.onnx_embedding import FLOAT_MODEL_FILE, TOKENIZER_DIRECTORY, OnnxQuestionEncoder, export_key
from service.config import QuestionRuntime
from service.engine import Engine, question_encoder_for
from tests.conftest import make_settings

pytestmark = pytest.mark.integration

QUESTIONS = [
    "what projects could Larijani's visit accelerate?",
    "Who signed the pact?",
    "¿Quién firmó el pacto de defensa en Riad? 防衛協定 🛡️",
    "x",
    "Pakistan and Saudi Arabia signed a mutual defence pact in Riyadh. " * 40,  # past 256 word pieces
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


def test_the_onnx_copy_gives_the_models_own_vectors(
    real_embedder: SentenceTransformerEmbedder, cache: Path
) -> None:
    encoder = OnnxQuestionEncoder(real_embedder, cache)
    assert encoder.runtime == "onnxruntime"
    vectors = encoder.embed_batch(QUESTIONS)
    np.testing.assert_allclose(vectors, real_embedder.embed_batch(QUESTIONS), atol=1e-5)
    one_by_one = np.concatenate([encoder.embed_batch([question]) for question in QUESTIONS])
    np.testing.assert_allclose(one_by_one, vectors, atol=1e-5)  # padding in a batch changes nothing
    assert vectors.dtype == np.float32 and vectors.shape == (len(QUESTIONS), real_embedder.dimension)
    assert (encoder.model_name, encoder.dimension) == (real_embedder.model_name, real_embedder.dimension)
    export = cache / export_key(real_embedder)
    assert sorted(path.name for path in cache.iterdir()) == [export.name]  # no staging left behind
    assert sorted(path.name for path in export.iterdir()) == [FLOAT_MODEL_FILE, TOKENIZER_DIRECTORY]


def test_an_existing_export_is_loaded_not_made_again(
    real_embedder: SentenceTransformerEmbedder, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    OnnxQuestionEncoder(real_embedder, cache).embed_batch(QUESTIONS[:1])  # the export exists

    def no_export(*args: object, **kwargs: object) -> Path:
        raise AssertionError("exported again")

    monkeypatch.setattr("index.onnx_embedding.export_onnx", no_export)
    again = OnnxQuestionEncoder(real_embedder, cache)
    assert again.runtime == "onnxruntime"
    np.testing.assert_allclose(again.embed_batch(QUESTIONS), real_embedder.embed_batch(QUESTIONS), atol=1e-5)


def test_a_damaged_export_means_the_model_itself(
    real_embedder: SentenceTransformerEmbedder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    export = tmp_path / export_key(real_embedder)
    (export / TOKENIZER_DIRECTORY).mkdir(parents=True)
    (export / FLOAT_MODEL_FILE).write_bytes(b"not an onnx model")
    encoder = OnnxQuestionEncoder(real_embedder, tmp_path)
    with caplog.at_level(logging.WARNING, logger="index.onnx_embedding"):
        assert encoder.runtime == "torch"
    assert "encoded with PyTorch" in caplog.text
    np.testing.assert_array_equal(encoder.embed_batch(QUESTIONS), real_embedder.embed_batch(QUESTIONS))


def test_a_copy_that_disagrees_with_the_model_is_not_used(
    real_embedder: SentenceTransformerEmbedder,
    cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr("index.onnx_embedding.AGREEMENT_TOLERANCE", -1.0)  # nothing agrees
    encoder = OnnxQuestionEncoder(real_embedder, cache)
    with caplog.at_level(logging.WARNING, logger="index.onnx_embedding"):
        assert encoder.runtime == "torch"
    assert "gives other vectors than the model" in caplog.text


def test_the_settings_choose_the_runtime(real_embedder: SentenceTransformerEmbedder, tmp_path: Path) -> None:
    default = make_settings(tmp_path / "index")
    assert default.question_runtime == QuestionRuntime.ONNX
    assert isinstance(question_encoder_for(default, real_embedder), OnnxQuestionEncoder)
    torch = make_settings(tmp_path / "index", question_runtime="torch")
    assert question_encoder_for(torch, real_embedder) is real_embedder
    fake = HashingEmbedder()
    assert question_encoder_for(default, fake) is fake  # only a real model has an ONNX copy


def test_the_service_encodes_questions_with_the_onnx_copy(
    real_client: TestClient, real_engine: Engine
) -> None:
    answer = real_client.get("/search", params={"q": QUESTIONS[0], "k": 1})
    assert answer.status_code == 200 and "Larijani" in answer.json()["results"][0]["text"]
    assert isinstance(real_engine.question_encoder, OnnxQuestionEncoder)
    assert real_engine.question_encoder.runtime == "onnxruntime"  # not a silent fall back to PyTorch
