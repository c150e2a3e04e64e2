"""Records passed between the responder and the answer models (``Turn`` and ``Usage`` are the
domain's, ``app.domain``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.domain import Turn, Usage

__all__ = ["AnswerRequest", "ModelAnswer", "Passage", "Turn", "Usage"]


@dataclass(frozen=True)
class Passage:
    """A retrieved passage handed to the answer model; ``id`` is what the model cites."""

    id: str  # article id (or conversation id for past conversations)
    chunk_id: str
    title: str
    url: str
    text: str
    score: float
    collection: str = "articles"
    confidence: float = 0.0  # calibrated 0..1 relevance of this passage to the question
    section: str = ""  # heading path within the article
    index: int = 0  # position of the passage within its article


@dataclass(frozen=True)
class AnswerRequest:
    """Everything an answer model needs for one turn.

    ``system_prompt`` and ``style`` come from the conversation's variant; ``passages`` are the
    grounding data (the model must only cite their ids).
    """

    question: str
    passages: list[Passage]
    system_prompt: str
    history: list[Turn] = field(default_factory=list)
    style: str = "standard"
    variant: str = "control"
    max_tokens: int = 700


@dataclass
class ModelAnswer:
    """An answer model's output for one turn.

    ``cited_ids`` only ever holds ids of passages that were given; ``needs_human`` is the
    model's own hand-off request with a reason code.
    """

    text: str
    cited_ids: list[str]
    provider: str
    model: str
    needs_human: bool = False
    human_reason: str | None = None
    confidence: float | None = None
    usage: Usage | None = None
    fallback_from: str | None = None  # provider that failed before this one answered
