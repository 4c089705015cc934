"""The int8 ONNX export: it leaves the model it exports as it found it, and its vectors stay
close to that model's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from index.embedding import SentenceTransformerEmbedder

pytestmark = pytest.mark.integration

TEXTS = [
    "what projects could Larijani's visit accelerate?",
    "Pakistan and Saudi Arabia\nThe two countries signed a mutual defence pact in Riyadh. " * 3,
    "Tokyo",
]


def test_export_leaves_the_source_model_in_eval_mode(tmp_path: Path) -> None:
    from index.onnx_embedding import INT8_MODEL_FILE, TOKENIZER_DIRECTORY, OnnxEmbedder, export_int8

    # A model of its own: the export must not be able to hide behind the session's shared one.
    source = SentenceTransformerEmbedder()
    before = source.embed_batch(TEXTS)
    modes = {name: module.training for name, module in source.model.named_modules()}
    assert not source.model[0].auto_model.training
    export_int8(source, tmp_path / "onnx")
    # Read before any `embed_batch`, which would put the model back into eval mode itself.
    assert {name: module.training for name, module in source.model.named_modules()} == modes
    np.testing.assert_allclose(source.embed_batch(TEXTS), before, atol=1e-5)
    assert sorted(path.name for path in (tmp_path / "onnx").iterdir()) == [
        INT8_MODEL_FILE,
        TOKENIZER_DIRECTORY,
    ]

    onnx = OnnxEmbedder(tmp_path / "onnx", f"{source.model_name}-onnx-int8")
    assert onnx.model_name == "all-MiniLM-L6-v2-onnx-int8"
    cosines = np.sum(onnx.embed_batch(TEXTS) * before, axis=1)
    assert cosines.min() > 0.98  # int8 weights: ~0.994 on SciFact passages, never the same vector
