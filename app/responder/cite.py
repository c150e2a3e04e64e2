"""Step 4 of a turn: cite. Only articles the model was given and cited become customer-facing
citations: past conversations are other customers' chats, used for grounding but never shown
or linked."""

from __future__ import annotations

from collections.abc import Iterable

from app.domain import Citation
from app.responder.types import Passage


def cite(cited_ids: Iterable[str], passages: list[Passage]) -> list[Citation]:
    """Citations for the ids the model cited, in its order, keeping only given articles."""
    by_id = {p.id: p for p in passages}
    return [Citation(i, by_id[i].title, by_id[i].url) for i in cited_ids
            if i in by_id and by_id[i].collection == "articles"]
