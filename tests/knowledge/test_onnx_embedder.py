"""The ONNX query embedder: same vectors as the torch path, no torch import, stale exports refused.

The export runs once per session (a few seconds: the torch model is already loaded by the
``embedder`` fixture, so only the trace itself is paid).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from app.config import Settings
from app.errors import ConfigError
from app.knowledge.embedder import Embedder, SentenceTransformerEmbedder, resolve_model_path
from app.knowledge.onnx_embedder import (
    OnnxQueryEmbedder,
    get_query_embedder,
    load_onnx_query_embedder,
)
from app.knowledge.onnx_export import (
    FINGERPRINT_FILE,
    MODEL_FILE,
    _spec,
    ensure_onnx_export,
    export_is_current,
    onnx_dir,
)

MODEL = resolve_model_path("")

LONG = ("To return an item, open your order history, choose the order and select the items you "
        "want to send back. Print the prepaid label, pack the items in their original box and "
        "drop the parcel at any carrier location within thirty days of delivery. ") * 12

TEXTS = [
    # short and empty-ish
    "", " ", "\n\t", "?", "a", "ok", "hi there", "refund", "Where is my order?",
    "where is my order", "WHERE IS MY ORDER", "order #A-123-456 not arrived",
    "cancel subscription", "how do I reset my password", "my kettle leaks!!!",
    # ordinary questions
    "Can I change the delivery address after the order has shipped?",
    "The smart lamp keeps blinking amber and will not join my 5 GHz Wi-Fi network.",
    "Is the warranty still valid if I lost the receipt but have the order confirmation email?",
    "What payment methods do you accept, and can I split a payment across two gift cards?",
    "I was charged twice for the same order yesterday, please help.",
    "How long does a refund take to reach my credit card after you receive the return?",
    "Do you ship to Norway, Switzerland or other countries outside the European Union?",
    "My package says delivered but I never got it; the neighbours have not seen it either.",
    "Can I return a gift without the person who bought it finding out?",
    "The app crashes when I open the settings page on Android 14.",
    # unicode, accents, other scripts, emoji
    "Où est ma commande ? Je l'ai passée il y a dix jours.",
    "¿Puedo devolver un artículo rebajado?",
    "Meine Bestellung ist beschädigt angekommen – was nun?",
    "注文した商品がまだ届きません。",
    "我的订单什么时候发货？",
    "Мой заказ не пришёл вовремя",
    "طلبي لم يصل بعد",
    "मेरा ऑर्डर कहाँ है?",
    "refund 💸 please 🙏🙏", "🚀🚀🚀", "naïve café résumé façade",
    "Ǆemal’s “smart” quotes — and dashes…", "\u200bzero\u200bwidth\u200bspaces",
    "tab\tseparated\tvalues\nand newlines\r\n",
    # code, numbers, markup
    "ERROR 0x80070057: the parameter is incorrect",
    "SELECT * FROM orders WHERE id = 42;", "<p>Hello <b>world</b></p>",
    "https://help.example.test/articles/returns?lang=en#label",
    "3.14159 2.71828 1.41421 1.73205", "iPhone15,2 vs. SM-S918B",
    # long: past the 256-token limit, so truncation must match
    LONG, LONG.upper(), "word " * 600, "🙂 " * 400, "ü" * 3000,
    "Returns and refunds. " + LONG[:700],
    " ".join(f"token{i}" for i in range(400)),
]


@pytest.fixture(scope="session")
def onnx_settings(tmp_path_factory: pytest.TempPathFactory,
                  make_settings: Callable[..., Settings]) -> Settings:
    """Settings whose data dir holds a fresh export (made once per session)."""
    settings = make_settings(tmp_path_factory.mktemp("onnx") / "data")
    started = time.perf_counter()
    ensure_onnx_export(settings)
    print(f"\nONNX export: {time.perf_counter() - started:.1f}s")
    return settings


@pytest.fixture(scope="session")
def onnx_embedder(onnx_settings: Settings) -> OnnxQueryEmbedder:
    found = load_onnx_query_embedder(onnx_settings)
    assert found is not None
    return found


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_vectors_match_the_torch_path(onnx_embedder: OnnxQueryEmbedder,
                                      embedder: Embedder) -> None:
    assert isinstance(embedder, SentenceTransformerEmbedder)
    assert len(TEXTS) >= 50
    assert onnx_embedder.dim == embedder.dim == 384
    assert onnx_embedder.max_seq_length == embedder.max_seq_length
    ours = onnx_embedder.embed_documents(TEXTS)
    theirs = embedder.embed_documents(TEXTS)
    cos = _cosines(ours, theirs)
    print(f"\ncosine vs torch over {len(TEXTS)} texts: min {cos.min():.8f}, "
          f"mean {cos.mean():.8f}; max |diff| {np.abs(ours - theirs).max():.2e}")
    assert cos.min() >= 1 - 1e-4, [TEXTS[i][:40] for i in np.argsort(cos)[:3]]
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert ours.dtype == np.float32


def test_vectors_do_not_depend_on_batching(onnx_embedder: OnnxQueryEmbedder) -> None:
    together = onnx_embedder.embed_documents(TEXTS)
    alone = np.stack([onnx_embedder.embed_query(t) for t in TEXTS[::5]])
    assert _cosines(together[::5], alone).min() >= 1 - 1e-5


def test_token_counts_match_the_torch_path(onnx_embedder: OnnxQueryEmbedder,
                                           embedder: Embedder) -> None:
    before = (onnx_embedder.stats.tokens, embedder.stats.tokens)
    onnx_embedder.embed_documents(TEXTS[-8:])
    embedder.embed_documents(TEXTS[-8:])
    assert onnx_embedder.stats.tokens - before[0] == embedder.stats.tokens - before[1]


def test_cold_start_imports_neither_torch_nor_sentence_transformers(
        onnx_settings: Settings) -> None:
    """A fresh interpreter: import, load the export, embed; time it and list heavy modules."""
    script = textwrap.dedent(f"""
        import json, sys, time
        started = time.perf_counter()
        from pathlib import Path
        from app.knowledge.onnx_embedder import OnnxQueryEmbedder
        imported = time.perf_counter()
        emb = OnnxQueryEmbedder(Path({str(onnx_dir(onnx_settings))!r}))
        loaded = time.perf_counter()
        vec = emb.embed_query("where is my order")
        embedded = time.perf_counter()
        heavy = sorted({{m.split(".")[0] for m in sys.modules}}
                       & {{"torch", "sentence_transformers", "transformers"}})
        print(json.dumps({{"import_s": imported - started, "load_s": loaded - imported,
                          "embed_s": embedded - loaded, "shape": list(vec.shape),
                          "heavy": heavy}}))
    """)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=120, check=True)
    got = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"\nONNX cold start: import {got['import_s']:.2f}s, load {got['load_s']:.2f}s, "
          f"first query {got['embed_s'] * 1000:.0f} ms")
    assert got["heavy"] == []
    assert got["shape"] == [384]
    # Generous: on an idle 2-core machine this is well under a second.
    assert got["import_s"] + got["load_s"] < 5


def test_a_changed_model_makes_the_export_stale(onnx_settings: Settings,
                                                make_settings: Callable[..., Settings],
                                                tmp_path: Path) -> None:
    # The same files under another path are the same model: the export is reused.
    same = tmp_path / "same"
    same.mkdir()
    for item in MODEL.iterdir():
        (same / item.name).symlink_to(item)
    data = onnx_settings.data_dir
    assert load_onnx_query_embedder(make_settings(data, embedding_model=str(same))) is not None

    # One config value changed: the fingerprint no longer matches, so no ONNX embedder.
    changed = tmp_path / "changed"
    shutil.copytree(same, changed, symlinks=True)
    (changed / "sentence_bert_config.json").unlink()
    (changed / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": 128, "do_lower_case": False}))
    assert not export_is_current(changed, onnx_dir(onnx_settings))
    assert load_onnx_query_embedder(make_settings(data, embedding_model=str(changed))) is None


def test_a_tampered_or_partial_export_is_not_loaded(onnx_settings: Settings,
                                                    make_settings: Callable[..., Settings],
                                                    tmp_path: Path) -> None:
    copy = tmp_path / "data" / "onnx"
    shutil.copytree(onnx_dir(onnx_settings), copy)
    settings = make_settings(tmp_path / "data")
    assert load_onnx_query_embedder(settings) is not None

    recorded = json.loads((copy / FINGERPRINT_FILE).read_text())
    (copy / FINGERPRINT_FILE).write_text(json.dumps({**recorded, "sha256": "0" * 64}))
    assert load_onnx_query_embedder(settings) is None

    # The source fingerprint matches but the graph is damaged: refused, not fatal.
    (copy / FINGERPRINT_FILE).write_text(json.dumps(recorded))
    (copy / MODEL_FILE).write_bytes(b"not a graph")
    assert load_onnx_query_embedder(settings) is None
    (copy / MODEL_FILE).unlink()
    assert load_onnx_query_embedder(settings) is None
    assert load_onnx_query_embedder(make_settings(tmp_path / "empty")) is None


def test_ensure_export_keeps_a_current_export(onnx_settings: Settings) -> None:
    before = (onnx_dir(onnx_settings) / MODEL_FILE).stat().st_mtime_ns
    assert ensure_onnx_export(onnx_settings) == onnx_dir(onnx_settings)
    assert (onnx_dir(onnx_settings) / MODEL_FILE).stat().st_mtime_ns == before
    assert not list(onnx_settings.data_dir.glob(".onnx-*"))  # no temp dirs left behind


def test_get_query_embedder_prefers_a_current_export(
        onnx_settings: Settings, embedder: Embedder,
        make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    assert isinstance(get_query_embedder(onnx_settings), OnnxQueryEmbedder)
    # No export: the torch embedder (the process-wide one the session already loaded).
    assert get_query_embedder(make_settings(tmp_path / "bare")) is embedder


def test_pooling_and_length_are_read_from_the_model(tmp_path: Path) -> None:
    spec = _spec(MODEL)
    assert spec["pooling"] == ["mean"] and spec["normalize"] and spec["max_seq_length"] == 256

    other = tmp_path / "cls-model"
    shutil.copytree(MODEL, other, ignore=shutil.ignore_patterns("*.safetensors"))
    pooling = json.loads((other / "1_Pooling" / "config.json").read_text())
    pooling.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True,
                   pooling_mode_max_tokens=True)
    (other / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    (other / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128}))
    spec = _spec(other)
    assert spec["pooling"] == ["cls", "max"] and spec["dim"] == 768
    assert spec["max_seq_length"] == 128

    # The newer config form names the modes, in output order.
    (other / "1_Pooling" / "config.json").write_text(json.dumps(
        {"embedding_dimension": 384, "pooling_mode": ["mean_sqrt_len_tokens", "cls"]}))
    assert _spec(other)["pooling"] == ["mean_sqrt_len", "cls"]
    (other / "1_Pooling" / "config.json").write_text(json.dumps(
        {"embedding_dimension": 384, "pooling_mode": "lasttoken"}))
    with pytest.raises(ConfigError, match="lasttoken"):
        _spec(other)

    modules = json.loads((other / "modules.json").read_text())
    modules.append({"idx": 3, "name": "3", "path": "3_Dense",
                    "type": "sentence_transformers.models.Dense"})
    (other / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ConfigError, match="Dense"):
        _spec(other)
