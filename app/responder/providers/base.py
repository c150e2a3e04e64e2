"""``AnswerModel``: the one interface every answer provider implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

from app.responder.types import AnswerRequest, ModelAnswer


class AnswerModel(ABC):
    """Generates a grounded answer from retrieved passages.

    Subclasses implement ``answer``; those that can stream override ``stream`` and set
    ``can_stream``. ``stream`` yields text deltas (``str``) and, last, the full ``ModelAnswer``.
    Failures after the provider's own retries raise ``app.errors.ProviderError``.
    """

    name: str = "model"
    model_id: str = "model"
    can_stream: bool = False

    @abstractmethod
    def answer(self, request: AnswerRequest) -> ModelAnswer:
        """The whole answer for one turn."""

    def stream(self, request: AnswerRequest) -> Iterator[str | ModelAnswer]:
        """Text deltas, then the final ``ModelAnswer`` (default: one delta, then the answer)."""
        result = self.answer(request)
        yield result.text
        yield result
