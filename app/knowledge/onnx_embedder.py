"""Query embeddings through ONNX Runtime, from a graph exported from the same weights.

Importing sentence-transformers (and so torch) costs seconds at start-up; a query vector needs
neither. ``OnnxQueryEmbedder`` runs the graph ``app.knowledge.onnx_export`` wrote with the fast
tokenizer, ONNX Runtime and numpy only. Documents may keep the torch path: both give the same
vectors (cosine within 1e-4, see tests/knowledge/test_onnx_embedder.py).

This module must not import torch or sentence_transformers.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from app.errors import ConfigError
from app.knowledge.embedder import Embedder, resolve_model_path
from app.knowledge.onnx_export import (
    MODEL_FILE,
    SPEC_FILE,
    TOKENIZER_FILE,
    export_is_current,
    onnx_dir,
)

if TYPE_CHECKING:
    from app.config import Settings

log = logging.getLogger("supportbot")


# ---- runtime ------------------------------------------------------------------------------


def _default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class OnnxQueryEmbedder(Embedder):
    """An exported model run by ONNX Runtime: same vectors as the torch path, no torch import.

    Args:
        export_dir: a directory written by ``export_onnx``.
        batch_size: texts per forward pass.
        threads: ONNX Runtime intra-op threads (default: the CPUs this process may use).

    Example:
        >>> emb = OnnxQueryEmbedder(ensure_onnx_export(settings))
        >>> emb.embed_query("where is my order").shape
        (384,)
    """

    def __init__(self, export_dir: Path, batch_size: int = 64, threads: int | None = None,
                 spin: bool = False) -> None:
        super().__init__()
        import onnxruntime as ort
        from tokenizers import Tokenizer

        spec = json.loads((export_dir / SPEC_FILE).read_text(encoding="utf-8"))
        self.spec = spec
        self.name = str(spec["name"])
        self.dim = int(spec["dim"])
        self.batch_size = batch_size
        self.max_seq_length = int(spec["max_seq_length"])
        self._inputs: list[str] = list(spec["inputs"])
        self._pooling: list[str] = list(spec["pooling"])
        self._lower = bool(spec["do_lower_case"])

        tokenizer = Tokenizer.from_file(str(export_dir / TOKENIZER_FILE))
        # tokenizer.json carries its own truncation/padding (all-MiniLM-L6-v2's says a fixed
        # 128): sentence-transformers truncates at max_seq_length and pads to the longest.
        tokenizer.enable_truncation(self.max_seq_length)
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        self._pad_id = int(spec["pad_token_id"])

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or _default_threads()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning workers would burn the cores the event loop and retrieval need between
        # batches; a server does better with them asleep.
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        self._session = ort.InferenceSession(str(export_dir / MODEL_FILE), options,
                                             providers=["CPUExecutionProvider"])
        # One batch at a time: the tokenizer's settings are shared state, and a second
        # concurrent run only contends for the same cores.
        self._lock = threading.Lock()

    def _encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        if self._lower:
            texts = [t.lower() for t in texts]
        encodings = self._tokenizer.encode_batch(texts, add_special_tokens=True)
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(texts), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(texts), width), dtype=np.int64)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc.ids)] = enc.ids
            mask[row, : len(enc.ids)] = 1
        return ids, mask

    def _pool(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        weights = mask[:, :, None].astype(np.float32)
        counts = np.clip(weights.sum(axis=1), 1e-9, None)
        parts = []
        for mode in self._pooling:
            if mode == "cls":
                parts.append(hidden[:, 0])
            elif mode == "max":
                parts.append(np.where(weights > 0, hidden, -1e9).max(axis=1))
            elif mode == "mean":
                parts.append((hidden * weights).sum(axis=1) / counts)
            else:  # mean_sqrt_len
                parts.append((hidden * weights).sum(axis=1) / np.sqrt(counts))
        return np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        # Sort by length so each batch pads little; restore order at the end.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        tokens = 0
        with self._lock:
            for start in range(0, len(texts), self.batch_size):
                idx = order[start : start + self.batch_size]
                ids, mask = self._encode([texts[i] for i in idx])
                tokens += int(mask.sum())
                feed = {"input_ids": ids, "attention_mask": mask,
                        "token_type_ids": np.zeros_like(ids)}
                hidden = self._session.run(None, {n: feed[n] for n in self._inputs})[0]
                pooled = self._pool(hidden.astype(np.float32, copy=False), mask)
                # Always L2-normalise: the Embedder contract (and the torch path) does.
                norms = np.linalg.norm(pooled, axis=1, keepdims=True)
                out[idx] = pooled / np.clip(norms, 1e-12, None)
        self.stats.texts += len(texts)
        self.stats.tokens += tokens
        return out


def load_onnx_query_embedder(settings: Settings, threads: int | None = None,
                             ) -> OnnxQueryEmbedder | None:
    """The ONNX query embedder if an up-to-date export exists for the configured model."""
    try:
        model_dir = resolve_model_path(settings.embedding_model)
    except ConfigError:
        return None
    out_dir = onnx_dir(settings)
    if not export_is_current(model_dir, out_dir):
        return None
    try:
        return OnnxQueryEmbedder(out_dir, batch_size=settings.embedding_batch_size,
                                 threads=threads)
    except Exception as e:  # ONNX Runtime's errors are bare Exceptions; torch still works
        log.warning("ONNX export in %s unusable (%s); using the torch embedder", out_dir, e)
        return None


_QUERY_EMBEDDERS: dict[tuple[str, str], Embedder] = {}
_QUERY_LOCK = threading.Lock()


def get_query_embedder(settings: Settings) -> Embedder:
    """The process-wide query embedder: ONNX when a current export exists on CPU, else torch.

    The one decision point, so the server and the benchmark's ceiling use the same path."""
    from app.knowledge.embedder import get_embedder

    if settings.embedding_device != "cpu":
        return get_embedder(settings)
    key = (str(onnx_dir(settings).resolve()), settings.embedding_model)
    with _QUERY_LOCK:
        if key not in _QUERY_EMBEDDERS:
            found = load_onnx_query_embedder(settings)
            _QUERY_EMBEDDERS[key] = found if found is not None else get_embedder(settings)
        return _QUERY_EMBEDDERS[key]
