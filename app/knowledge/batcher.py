"""Micro-batching for query embeddings.

Concurrent requests each need one query vector; embedding them one at a time wastes the model's
batch parallelism. ``QueryBatcher`` gathers the queries that arrive while the model is busy (or
within ``max_wait_ms`` of each other) and embeds them in one forward pass on a single worker
thread. Callers block on a future (threads) or await it (asyncio).
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

import numpy as np

from app.knowledge.embedder import Embedder

_STOP = object()


class QueryBatcher:
    """Embeds queries from many callers in shared batches.

    Args:
        embedder: the model.
        max_batch: most queries per forward pass.
        max_wait_ms: how long the first query of a batch waits for company when the model is
            idle (a busy model batches whatever queued up meanwhile, with no extra wait).

    Example:
        >>> batcher = QueryBatcher(embedder)
        >>> batcher.embed("where is my order").shape
        (384,)
    """

    def __init__(self, embedder: Embedder | Callable[[], Embedder], max_batch: int = 32,
                 max_wait_ms: float = 2.0):
        self._embedder = embedder
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self._queue: queue.Queue[object] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="query-batcher", daemon=True)
        self._started = False
        self._lock = threading.Lock()
        self.batches = 0
        self.queries = 0

    @property
    def embedder(self) -> Embedder:
        """The model (resolved on first use, so building a batcher loads nothing)."""
        if not isinstance(self._embedder, Embedder):
            self._embedder = self._embedder()
        return self._embedder

    def _ensure_started(self) -> None:
        with self._lock:
            if not self._started:  # also after close(): a restarted app gets a new worker
                self._thread = threading.Thread(target=self._run, name="query-batcher",
                                                daemon=True)
                self._thread.start()
                self._started = True

    def submit(self, text: str) -> Future[np.ndarray]:
        """Queue one query; the future resolves to its vector."""
        self._ensure_started()
        fut: Future[np.ndarray] = Future()
        self._queue.put((text, fut))
        return fut

    def embed(self, text: str) -> np.ndarray:
        """Blocking: the vector for ``text`` (batched with whatever else is waiting)."""
        return self.submit(text).result()

    async def aembed(self, text: str) -> np.ndarray:
        """Awaitable: the vector for ``text``."""
        return await asyncio.wrap_future(self.submit(text))

    def close(self) -> None:
        with self._lock:
            if self._started:
                self._queue.put(_STOP)
                self._thread.join(timeout=5)
                self._started = False

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            items = [first]
            deadline = time.perf_counter() + self.max_wait
            while len(items) < self.max_batch:
                remaining = deadline - time.perf_counter()
                try:
                    item = self._queue.get(timeout=max(0.0, remaining)) if remaining > 0 \
                        else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    self._queue.put(_STOP)
                    break
                items.append(item)
            pairs: list[tuple[str, Future[np.ndarray]]] = items  # type: ignore[assignment]
            texts = [t for t, _ in pairs]
            futures = [f for _, f in pairs]
            try:
                vectors = self.embedder.embed_documents(texts)
            except Exception as e:  # delivered to every waiting caller
                for f in futures:
                    f.set_exception(e)
                continue
            self.batches += 1
            self.queries += len(texts)
            for f, v in zip(futures, vectors, strict=True):
                f.set_result(v)
