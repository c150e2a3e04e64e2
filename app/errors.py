"""One error hierarchy for supportbot; the CLI and HTTP edges turn these into messages and codes."""

from __future__ import annotations


class SupportbotError(Exception):
    """Base class: every error we raise on purpose. The message names the problem and the fix."""


class ConfigError(SupportbotError):
    """A setting is missing or invalid."""


class SourceError(SupportbotError):
    """One input record or file could not be ingested.

    Args:
        source: file path the record came from.
        message: what is wrong and how to fix it.
        line: 1-based line (JSONL/CSV row) when known.
    """

    def __init__(self, source: str, message: str, line: int | None = None) -> None:
        self.source = source
        self.line = line
        self.reason = message
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {message}")


class IndexStoreError(SupportbotError):
    """The vector/lexical index could not be read or written."""


class NotFoundError(SupportbotError):
    """A requested resource does not exist."""


class ProviderError(SupportbotError):
    """The answer model failed (after its retries); the responder falls back or escalates."""


class ValidationError(SupportbotError):
    """A request is well-formed but not acceptable (too long, wrong state)."""
