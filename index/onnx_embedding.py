"""An int8-quantised ONNX Runtime copy of the sentence-transformers model, as an `Embedder`.

`export_int8(model, directory)` exports the model's transformer to ONNX (torch's exporter) and
quantises its matrix multiplications to int8 with per-channel weights (ONNX Runtime's dynamic
quantisation; embeddings and layer norms stay float, which keeps cosine to the float model near
0.99). `OnnxEmbedder` then encodes with ONNX Runtime and the model's own tokenizer, mean pooling
and L2 normalisation, exactly as the float model does.

Whether it is worth using is measured by `make bench` (speed, and nDCG@10 against the default);
it needs the optional `onnx` extra (`pip install -e '.[onnx]'`). Left out: GPU providers and
static (calibrated) quantisation.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from index.embedding import SentenceTransformerEmbedder, Vectors

MODEL_FILE = "model_int8.onnx"


def export_int8(source: SentenceTransformerEmbedder, directory: Path) -> Path:
    """Export and quantise `source`'s model into `directory` (atomically); returns the model file."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = directory / MODEL_FILE
    if target.exists():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    staging = directory / f".tmp-{uuid.uuid4().hex}"
    staging.mkdir()
    transformer = source.model[0].auto_model
    was_training = transformer.training
    try:
        transformer.eval()
        sample = source.model.tokenizer(
            ["an example", "another example text"], padding=True, return_tensors="pt"
        )
        names = ["input_ids", "attention_mask", "token_type_ids"]
        axes = {name: {0: "batch", 1: "tokens"} for name in [*names, "last_hidden_state"]}
        # The wrapper must be in eval mode too: the exporter puts the module it is given back
        # into that module's own mode afterwards, recursively, and a fresh `nn.Module` is in
        # training mode, which would leave the source model's dropout on for every later
        # `embed_batch` (vectors at cosine ~0.97 to the real ones, different on every call).
        torch.onnx.export(
            _hidden_states(transformer).eval(),
            tuple(sample[name] for name in names),
            str(staging / "model.onnx"),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
        quantize_dynamic(
            staging / "model.onnx",
            staging / MODEL_FILE,
            op_types_to_quantize=["MatMul"],
            per_channel=True,
            weight_type=QuantType.QInt8,
        )
        source.model.tokenizer.save_pretrained(str(staging / "tokenizer"))
        for name in (MODEL_FILE, "tokenizer"):
            os.replace(staging / name, directory / name)
    finally:
        transformer.train(was_training)
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _hidden_states(transformer: Any) -> Any:
    """`transformer` wrapped so the exported graph returns its last hidden state only."""
    import torch

    class HiddenStates(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            output = self.transformer(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return output.last_hidden_state

    return HiddenStates()


class OnnxEmbedder:
    """Mean-pooled, normalised sentence vectors from the int8 ONNX model in `directory`."""

    def __init__(self, directory: Path, base_name: str, threads: int = 0, max_tokens: int = 256) -> None:
        import onnxruntime
        from transformers import AutoTokenizer

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads  # 0: one per core
        self._session = onnxruntime.InferenceSession(
            str(directory / MODEL_FILE), options, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = AutoTokenizer.from_pretrained(str(directory / "tokenizer"))
        self.model_name = f"{base_name}-onnx-int8"
        self.max_tokens = max_tokens
        self.dimension = int(self.embed_batch(["probe"]).shape[1])

    def embed_batch(self, texts: Sequence[str], batch_size: int = 32) -> Vectors:
        rows = []
        order = np.argsort([-len(text) for text in texts], kind="stable")  # little padding per batch
        for begin in range(0, len(texts), batch_size):
            batch = [texts[i] for i in order[begin : begin + batch_size]]
            encoded = self._tokenizer(
                batch, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="np"
            )
            feeds = {
                name: encoded[name].astype(np.int64)
                for name in ("input_ids", "attention_mask", "token_type_ids")
            }
            hidden = self._session.run(None, feeds)[0]
            mask = feeds["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            rows.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
        if not rows:
            return np.zeros((0, getattr(self, "dimension", 0)), dtype=np.float32)
        vectors = np.concatenate(rows).astype(np.float32)
        unsorted = np.empty_like(vectors)
        unsorted[order] = vectors
        return unsorted

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.tokenize(text))
