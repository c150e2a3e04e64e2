"""Shared fixtures: real components, built once where they are expensive.

- ``embedder``: the bundled all-MiniLM-L6-v2 model, loaded once per session.
- ``sample_kb``: the repository's ``knowledge/`` ingested once per session into a tmp dir.
- ``make_settings`` / ``make_kb``: explicit ``Settings`` and ``KnowledgeBase`` for a tmp dir, so a
  test never depends on the developer's environment or ``.env`` file.
- ``small_corpus``: a handful of Markdown/JSON articles written into ``tmp_path``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.config import Settings
from app.knowledge.base import KnowledgeBase
from app.knowledge.embedder import Embedder, get_embedder
from pipelines.ingest import Ingester, IngestReport

REPO = Path(__file__).resolve().parents[1]
KNOWLEDGE = REPO / "knowledge"

# Names the Settings object reads besides the SUPPORTBOT_ prefix.
_FOREIGN_ENV = ("CHROMA_HOST", "CHROMA_PORT", "DATABASE_URL", "REDIS_URL", "ANTHROPIC_API_KEY")


@pytest.fixture(scope="session", autouse=True)
def clean_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tests see none of the developer's supportbot settings, and never go to the network."""
    mp = pytest.MonkeyPatch()
    for name in list(os.environ):
        if name.startswith("SUPPORTBOT_") or name in _FOREIGN_ENV:
            mp.delenv(name)
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("TRANSFORMERS_OFFLINE", "1")
    mp.setenv("TOKENIZERS_PARALLELISM", "false")
    mp.setenv("ANONYMIZED_TELEMETRY", "False")
    # One ONNX export of the query path for the whole session (the CLI's ingest makes it),
    # shared by every data dir the tests create.
    mp.setenv("SUPPORTBOT_ONNX_DIR", str(tmp_path_factory.mktemp("onnx-export") / "onnx"))
    yield
    mp.undo()


def settings_for(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for one data dir, ignoring any ``.env`` file (its ONNX export under it, not
    the session's shared one, unless ``onnx_dir`` is given)."""
    overrides.setdefault("onnx_dir", data_dir / "onnx")
    return Settings(_env_file=None, data_dir=data_dir, **overrides)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def make_settings() -> Callable[..., Settings]:
    return settings_for


@pytest.fixture(scope="session")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    """The real embedding model, loaded once (the process-wide cache makes the CLI reuse it)."""
    return get_embedder(settings_for(tmp_path_factory.mktemp("embedder")))


@pytest.fixture
def make_kb(embedder: Embedder, tmp_path: Path) -> Callable[..., KnowledgeBase]:
    """Build a KnowledgeBase on ``tmp_path/data`` (or ``data_dir``) with the session embedder."""

    def make(data_dir: Path | None = None, embedder_: Any = embedder, index: Any = None,
             **overrides: Any) -> KnowledgeBase:
        settings = settings_for(data_dir or tmp_path / "data", **overrides)
        return KnowledgeBase(settings, embedder=embedder_, index=index)

    return make


@dataclass
class SampleKB:
    kb: KnowledgeBase
    report: IngestReport


@pytest.fixture(scope="session")
def sample(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> SampleKB:
    """The sample ``knowledge/`` directory, ingested once for the whole session."""
    settings = settings_for(tmp_path_factory.mktemp("sample-kb") / "data")
    kb = KnowledgeBase(settings, embedder=embedder)
    report = Ingester(kb, progress=False).run([KNOWLEDGE])
    assert report.added > 0, report.summary()
    return SampleKB(kb, report)


@pytest.fixture(scope="session")
def sample_kb(sample: SampleKB) -> KnowledgeBase:
    return sample.kb


# ---- a small synthetic corpus ------------------------------------------------------------

KETTLE_SECTIONS = {
    "Descaling": (
        "Hard water leaves a chalky layer of limescale inside the kettle. Fill it halfway with "
        "equal parts white vinegar and water, bring it to the boil, then let it stand for thirty "
        "minutes. Pour the mixture away, rinse twice with clean water and boil once more before "
        "making tea."
    ),
    "Filter cleaning": (
        "The mesh filter behind the spout catches flakes of scale. Lift it straight up out of its "
        "slot, soak it in warm soapy water for ten minutes and scrub it gently with a soft "
        "toothbrush. Slide it back until it clicks so that flakes never reach your cup."
    ),
    "Warranty": (
        "Every kettle carries a two year warranty against defects in materials and workmanship. "
        "Keep your receipt or order confirmation, because we ask for the order number when you "
        "file a claim. Damage from dropping the kettle or running it dry is not covered."
    ),
}

LAMP_SECTIONS = {
    "Pairing": (
        "Open the Lumen app, tap the plus button and choose Smart Lamp. Hold the lamp within two "
        "metres of your router while it blinks amber, then pick your home network from the list "
        "and type its password."
    ),
    "Five gigahertz networks": (
        "The lamp only joins 2.4 GHz networks. If your router broadcasts a single combined name, "
        "turn on the separate 2.4 GHz band in the router settings for a few minutes while you pair "
        "the lamp, then switch it back."
    ),
}


def markdown_article(doc_id: str, title: str, sections: dict[str, str],
                     category: str = "troubleshooting") -> str:
    """A help-center article in our Markdown format."""
    body = "\n\n".join(f"## {head}\n\n{text}" for head, text in sections.items())
    return (
        f"---\nid: {doc_id}\ntitle: {title}\nurl: https://help.example.test/articles/{doc_id}\n"
        f"category: {category}\nlocale: en-US\n---\n\n{body}\n"
    )


GIFT_RECORDS = [
    {"id": "gift-card-balance", "title": "Check a gift card balance",
     "text": "Enter the sixteen character gift card code on the balance page to see what is left "
             "on it. Balances never expire.", "category": "billing"},
    {"id": "gift-card-lost", "title": "Lost gift card",
     "text": "A lost physical gift card can be replaced if you still have the purchase receipt; "
             "we cancel the old code and email a new one.", "category": "billing"},
]


@pytest.fixture
def small_corpus(tmp_path: Path) -> Path:
    """Five articles in three files: two Markdown articles (sectioned) and a JSON list of two."""
    root = tmp_path / "corpus"
    (root / "guides").mkdir(parents=True)
    (root / "guides" / "kettle-care.md").write_text(
        markdown_article("kettle-care", "Kettle care", KETTLE_SECTIONS), encoding="utf-8")
    (root / "lamp-pairing.md").write_text(
        markdown_article("lamp-pairing", "Pair your smart lamp", LAMP_SECTIONS), encoding="utf-8")
    (root / "gift-cards.json").write_text(json.dumps(GIFT_RECORDS), encoding="utf-8")
    (root / "returns.md").write_text(
        "# Returns at a glance\n\nYou can return most items within thirty days of delivery for a "
        "full refund to the original payment method.\n", encoding="utf-8")
    return root


SMALL_CORPUS_IDS = {"kettle-care", "lamp-pairing", "gift-card-balance", "gift-card-lost",
                    "returns"}


@pytest.fixture
def small_corpus_ids() -> set[str]:
    return set(SMALL_CORPUS_IDS)


def chroma_documents(kb: KnowledgeBase, collection: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """What Chroma itself stores for a collection: id -> (document, metadata)."""
    from app.knowledge import chroma_name

    col = kb.index.client.get_collection(chroma_name(collection))
    got = col.get(include=["documents", "metadatas"])
    return {cid: (doc, meta) for cid, doc, meta in
            zip(got["ids"], got["documents"], got["metadatas"], strict=True)}


@pytest.fixture(scope="session")
def read_chroma() -> Callable[[KnowledgeBase, str], dict[str, tuple[str, dict[str, Any]]]]:
    return chroma_documents


# ---- records -------------------------------------------------------------------------------

def conversation_record(**overrides: Any) -> dict[str, Any]:
    """A past-conversation record as knowledge/conversations/*.jsonl holds them."""
    record: dict[str, Any] = {
        "conversation_id": "c1", "status": "resolved", "resolution": "ai_resolved", "tier": 1,
        "csat": 5, "turns": [
            {"role": "customer", "text": "my order is late and nobody answers"},
            {"role": "assistant", "text": "Sorry! It ships today."},
            {"role": "agent", "text": "Jen here, all sorted."},
            {"role": "customer", "text": "Great, thank you so much!"},
        ]}
    return record | overrides
