"""ONNX Runtime copies of the sentence-transformers model, as `Embedder`s.

`export_onnx(model, directory, quantize)` exports the model's transformer to ONNX (torch's
exporter) with its tokenizer, as float32 (`model.onnx`) or with its matrix multiplications
quantised to int8 per channel (`model_int8.onnx`, ONNX Runtime's dynamic quantisation). `OnnxEmbedder`
encodes with ONNX Runtime and the saved tokenizer, then mean pooling over the attention mask and
L2 normalisation, exactly as the float model's sentence-transformers pipeline does.

`OnnxQuestionEncoder` is how the service encodes questions: the float32 copy of a
`SentenceTransformerEmbedder`, exported once into a cache directory (keyed by the model's files
and torch's version) and checked against the model on probe texts before it is used; its vectors
are the model's to ~1e-7. It is there for speed: one question takes ~4 ms instead of ~12 ms, and
ONNX Runtime's `run` releases the GIL for the whole forward pass, where PyTorch's eager forward
takes it back at every layer, so under concurrency the model no longer waits for the request
handlers' Python (a batch of 8 beside one busy Python thread: 9 questions/s with PyTorch, 74 with
ONNX Runtime). A model it cannot export, or whose copy disagrees with it, is encoded with PyTorch
(logged once). Passages (builds, writes) and contextual span pooling stay on PyTorch: an index's
bytes do not depend on the runtime.

The int8 copy is measured by the benchmark only: it loses up to 0.016 nDCG@10 on the project's
eval sets (docs/performance.md). Left out: GPU providers, static (calibrated) quantisation.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from index.embedding import SentenceTransformerEmbedder, Vectors

FLOAT_MODEL_FILE = "model.onnx"
INT8_MODEL_FILE = "model_int8.onnx"
TOKENIZER_DIRECTORY = "tokenizer"
# The copy is used only when every probe's vector is within this of the model's (observed: 1.5e-7).
AGREEMENT_TOLERANCE = 1e-4
PROBES = (
    "what projects could Larijani's visit accelerate?",
    "Who signed the defence pact, and when?",
    "Pakistan and Saudi Arabia signed a mutual defence pact in Riyadh on Wednesday. " * 4,
    "Tokyo",
)

log = logging.getLogger(__name__)


class OnnxExportError(RuntimeError):
    """The model cannot be exported to ONNX, or its copy's vectors differ from the model's."""


def export_onnx(source: SentenceTransformerEmbedder, directory: Path, quantize: bool = False) -> Path:
    """Export `source`'s model into `directory` (atomically), float32 or int8; returns the model
    file. An existing export is kept as it is."""
    target = directory / (INT8_MODEL_FILE if quantize else FLOAT_MODEL_FILE)
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
        with warnings.catch_warnings():
            # The exporter warns about its own legacy (TorchScript) path and about tracing BERT's
            # masks; what it made is checked by its vectors (`OnnxQuestionEncoder`, the tests).
            warnings.simplefilter("ignore")
            _export(transformer, sample, staging / FLOAT_MODEL_FILE)
        if quantize:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(
                staging / FLOAT_MODEL_FILE,
                staging / INT8_MODEL_FILE,
                op_types_to_quantize=["MatMul"],
                per_channel=True,
                weight_type=QuantType.QInt8,
            )
        source.model.tokenizer.save_pretrained(str(staging / TOKENIZER_DIRECTORY))
        for name in (target.name, TOKENIZER_DIRECTORY):
            _replace_if_absent(staging / name, directory / name)
    finally:
        transformer.train(was_training)
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _export(transformer: Any, sample: Any, path: Path) -> None:
    import torch

    names = ["input_ids", "attention_mask", "token_type_ids"]
    # The wrapper must be in eval mode too: the exporter puts the module it is given back into
    # that module's own mode afterwards, recursively, and a fresh `nn.Module` is in training
    # mode, which would leave the source model's dropout on for every later `embed_batch`
    # (vectors at cosine ~0.97 to the real ones, different on every call).
    torch.onnx.export(
        _hidden_states(transformer).eval(),
        tuple(sample[name] for name in names),
        str(path),
        input_names=names,
        output_names=["last_hidden_state"],
        dynamic_axes={name: {0: "batch", 1: "tokens"} for name in [*names, "last_hidden_state"]},
        opset_version=17,
        dynamo=False,
    )


def export_int8(source: SentenceTransformerEmbedder, directory: Path) -> Path:
    """`export_onnx` quantised to int8 (the benchmark's backend comparison)."""
    return export_onnx(source, directory, quantize=True)


def _replace_if_absent(staged: Path, final: Path) -> None:
    """Move `staged` to `final`, unless another process's export got there first (same bytes)."""
    try:
        os.replace(staged, final)
    except OSError:
        if not final.exists():
            raise


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
    """Mean-pooled, normalised sentence vectors from an exported model in `directory`."""

    def __init__(
        self,
        directory: Path,
        model_name: str,
        model_file: str = INT8_MODEL_FILE,
        threads: int = 0,
        max_tokens: int = 256,
    ) -> None:
        import onnxruntime
        from transformers import AutoTokenizer

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads  # 0: one per core
        # Threads that spin between parallel regions take the cores from the request handlers'
        # Python: beside one busy Python thread, batches of 8 ran at 94/s spinning, 168/s not.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(
            str(directory / model_file), options, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = AutoTokenizer.from_pretrained(str(directory / TOKENIZER_DIRECTORY))
        self.model_name = model_name
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


class OnnxQuestionEncoder:
    """`source`'s vectors through its float32 ONNX copy (module docstring), made on first use:
    exported into `cache` once per model and torch version, then loaded and checked. Falls back
    to `source` itself, for good, when that fails."""

    def __init__(self, source: SentenceTransformerEmbedder, cache: Path, threads: int = 0) -> None:
        self.source = source
        self.cache = cache
        self.threads = threads
        self._encoder: OnnxEmbedder | SentenceTransformerEmbedder | None = None
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return self.source.model_name

    @property
    def dimension(self) -> int:
        return self.source.dimension

    @property
    def max_tokens(self) -> int:
        return self.source.max_tokens

    def count_tokens(self, text: str) -> int:
        return self.source.count_tokens(text)

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        return self.encoder.embed_batch(texts)

    @property
    def runtime(self) -> str:
        """`onnxruntime` or `torch`: what encodes (loads the encoder if need be)."""
        return "onnxruntime" if isinstance(self.encoder, OnnxEmbedder) else "torch"

    @property
    def encoder(self) -> OnnxEmbedder | SentenceTransformerEmbedder:
        with self._lock:
            if self._encoder is None:
                try:
                    self._encoder = self._checked_copy()
                # Any failure means PyTorch, which is always right: ONNX Runtime raises its own
                # types (`Fail`, `InvalidProtobuf`, ...), derived from Exception alone.
                except Exception as error:  # noqa: BLE001
                    log.warning("questions are encoded with PyTorch, not ONNX Runtime: %s", error)
                    self._encoder = self.source
            return self._encoder

    def _checked_copy(self) -> OnnxEmbedder:
        directory = self.cache / export_key(self.source)
        if not (directory / FLOAT_MODEL_FILE).exists():
            log.info("exporting %s to ONNX in %s (once)", self.source.model_name, directory)
            export_onnx(self.source, directory)
        copy = OnnxEmbedder(
            directory, self.source.model_name, FLOAT_MODEL_FILE, self.threads, self.source.max_tokens
        )
        difference = float(np.abs(copy.embed_batch(PROBES) - self.source.embed_batch(PROBES)).max())
        if difference > AGREEMENT_TOLERANCE:
            raise OnnxExportError(
                f"the ONNX copy of {self.source.model_name} in {directory} gives other vectors than "
                f"the model (largest difference {difference:.2e}); delete that directory to export again"
            )
        return copy


def export_key(source: SentenceTransformerEmbedder) -> str:
    """The cache directory name of `source`'s export: its name and a digest of its files (names,
    sizes, modification times) and of torch's and ONNX Runtime's versions."""
    import onnxruntime
    import torch

    root = Path(source.location)
    files = sorted(
        (str(path.relative_to(root)), path.stat().st_size, path.stat().st_mtime_ns)
        for path in root.rglob("*")
        if path.is_file()
    )
    described = json.dumps([str(root.resolve()), files, torch.__version__, onnxruntime.__version__])
    return f"{source.model_name}-{hashlib.sha256(described.encode()).hexdigest()[:16]}"
