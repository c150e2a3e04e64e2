"""Claude as an ``AnswerModel``: grounded, cited answers through the official ``anthropic`` SDK.

The SDK's own retries are off (``max_retries=0`` on the client) so the attempts counted here are
the only ones: exponential backoff with full jitter on 429, 408, 5xx, 529, connection errors
and timeouts, honouring ``retry-after``. Prompt building and output parsing live in
``prompting`` (pure); this module does the I/O.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import anthropic
import httpx
from anthropic.types import Message, MessageParam, TextBlockParam

from app.config import Settings
from app.errors import ConfigError, ProviderError
from app.responder.providers.base import AnswerModel
from app.responder.providers.prompting import MetaHoldBack, build_prompt, parse_output
from app.responder.types import AnswerRequest, ModelAnswer, Usage

try:  # anthropic>=2 speaks httpx2; older releases use httpx. Catch whichever is present.
    import httpx2

    _TRANSPORT_ERRORS: tuple[type[Exception], ...] = (httpx.HTTPError, httpx2.HTTPError)
    _TIMEOUT_ERRORS: tuple[type[Exception], ...] = (httpx.TimeoutException, httpx2.TimeoutException)
except ImportError:  # pragma: no cover - depends on the installed SDK
    _TRANSPORT_ERRORS = (httpx.HTTPError,)
    _TIMEOUT_ERRORS = (httpx.TimeoutException,)

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "claude-sonnet-5-5"
RETRY_AFTER_MAX_S = 60.0  # a longer retry-after would outlast any customer; fail over instead
_RETRYABLE_STATUS = {408, 429, 500, 502, 503, 504, 529}
_STATUS_OF_STREAM_ERROR = {"rate_limit_error": 429, "overloaded_error": 529, "api_error": 500}


class StreamCutOff(Exception):
    """The SSE stream ended without ``message_stop`` (treated like a dropped connection)."""


_FAILURES: tuple[type[Exception], ...] = (anthropic.APIError, StreamCutOff, *_TRANSPORT_ERRORS)


@dataclass(frozen=True)
class Failure:
    """How one failed attempt is handled: retried or not, and the words for the error."""

    retryable: bool
    cause: str  # e.g. "Claude rate-limited (429)"
    hint: str = ""  # how to fix it, appended to the final message
    retry_after: float | None = None


def client_from_settings(settings: Settings, *, sdk_retries: int | None = None,
                         timeout: float | None = None) -> anthropic.Anthropic:
    """The one place an Anthropic client is built from settings (answer model and judges).

    ``sdk_retries`` is the SDK's own retry count (default ``claude_max_retries``); the answer
    model passes 0 and retries itself with jitter."""
    if not settings.anthropic_api_key:
        raise ConfigError("No Anthropic API key: set ANTHROPIC_API_KEY (or "
                          "SUPPORTBOT_ANTHROPIC_API_KEY), or use the offline answers.")
    return anthropic.Anthropic(
        api_key=settings.anthropic_api_key, base_url=settings.claude_base_url,
        timeout=timeout or settings.claude_timeout,
        max_retries=settings.claude_max_retries if sdk_retries is None else sdk_retries)


class AnthropicAnswerModel(AnswerModel):
    """Answers with Claude from retrieved passages, streaming or not.

    Args:
        api_key: the Anthropic API key (``Settings.anthropic_api_key``); empty → ``ConfigError``.
        model: Claude model id.
        base_url: API base URL; None uses the SDK default (tests pass a fake server's URL).
        timeout: seconds per attempt (connect/read) before it counts as a timeout.
        max_retries: retries after the first attempt (so ``max_retries + 1`` attempts in all).
        backoff_base: seconds; the n-th retry waits up to ``backoff_base * 2**(n-1)``.
        backoff_cap: seconds; the most one backoff waits (``retry-after`` is honoured instead).
        sleep: how to wait between attempts (tests pass a recorder).
        rng: randomness for the jitter (tests pass a seeded ``random.Random``).

    Example:
        >>> model = AnthropicAnswerModel(settings.anthropic_api_key)
        >>> model.answer(AnswerRequest(question="Where is my order?", passages=hits,
        ...                            system_prompt="You are Acme's support assistant."))
        ModelAnswer(text='You can track it from ...', cited_ids=['track-order'], ...)
    """

    name = "anthropic"
    can_stream = True

    def __init__(
        self,
        api_key: str | None,
        *,
        model: str = DEFAULT_MODEL,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 4,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not api_key:
            raise ConfigError(
                "No Anthropic API key: set ANTHROPIC_API_KEY (or SUPPORTBOT_ANTHROPIC_API_KEY), "
                "or use the extractive answer provider."
            )
        if timeout <= 0 or max_retries < 0 or backoff_base < 0 or backoff_cap < backoff_base:
            raise ValueError(
                "Need timeout > 0, max_retries >= 0 and 0 <= backoff_base <= backoff_cap; got "
                f"timeout={timeout}, max_retries={max_retries}, backoff_base={backoff_base}, "
                f"backoff_cap={backoff_cap}."
            )
        self.model_id = model
        self.timeout = timeout
        self.max_attempts = max_retries + 1
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._client = anthropic.Anthropic(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> AnthropicAnswerModel:
        """Claude as configured (``ANTHROPIC_API_KEY``, ``SUPPORTBOT_CLAUDE_*``)."""
        return cls(settings.anthropic_api_key, model=settings.claude_model,
                   base_url=settings.claude_base_url, timeout=settings.claude_timeout,
                   max_retries=settings.claude_max_retries)

    def answer(self, request: AnswerRequest) -> ModelAnswer:
        """One whole answer (non-streaming request), retried on transient failures."""
        system, messages = self._payload(request)
        attempt = 0
        while True:
            attempt += 1
            try:
                message = self._client.messages.create(
                    model=self.model_id,
                    max_tokens=request.max_tokens,
                    system=system,
                    messages=messages,
                )
            except _FAILURES as exc:
                self._after_failure(exc, attempt, request)
                continue
            return self._to_answer(message, request)

    def stream(self, request: AnswerRequest) -> Iterator[str | ModelAnswer]:
        """Text deltas as Claude writes them (meta block held back), then the ``ModelAnswer``.

        A failure before any text was yielded is retried like ``answer``; after that it raises
        ``ProviderError`` at once, since the customer has already seen part of the answer.
        """
        system, messages = self._payload(request)
        attempt = 0
        while True:
            attempt += 1
            filtered = MetaHoldBack()
            shown = False
            try:
                with self._client.messages.stream(
                    model=self.model_id,
                    max_tokens=request.max_tokens,
                    system=system,
                    messages=messages,
                ) as events:
                    for delta in events.text_stream:
                        text = filtered.feed(delta)
                        if text:
                            shown = True
                            yield text
                    final = events.get_final_message()
                if final.stop_reason is None:
                    raise StreamCutOff("stream ended before message_stop")
            except _FAILURES as exc:
                if shown:
                    cause = classify(exc, self.model_id, self.timeout).cause
                    raise ProviderError(
                        f"{cause}: the stream broke after part of the answer was sent; "
                        "not retried, so the customer does not see it twice."
                    ) from exc
                self._after_failure(exc, attempt, request)
                continue
            tail = filtered.finish()
            if tail:
                yield tail
            yield self._to_answer(final, request)
            return

    def close(self) -> None:
        """Close the SDK's HTTP connections."""
        self._client.close()

    # -- helpers -----------------------------------------------------------------------------

    def _payload(self, request: AnswerRequest) -> tuple[list[TextBlockParam], list[MessageParam]]:
        """System blocks (cache breakpoint on the last: the stable prefix) and the messages."""
        prompt = build_prompt(request)
        system: list[TextBlockParam] = [{"type": "text", "text": part} for part in prompt.system]
        if system:
            system[-1]["cache_control"] = {"type": "ephemeral"}
        # cast: MessageParam is a union of role-specific TypedDicts in anthropic>=2.
        messages = [cast(MessageParam, {"role": r, "content": t}) for r, t in prompt.messages]
        return system, messages

    def _after_failure(self, exc: Exception, attempt: int, request: AnswerRequest) -> None:
        """Raise ``ProviderError`` if this failure is final; otherwise wait before retrying."""
        failure = classify(exc, self.model_id, self.timeout)
        if not failure.retryable:
            raise ProviderError(f"{failure.cause}{failure.hint}") from exc
        if attempt >= self.max_attempts:
            raise ProviderError(
                f"{failure.cause} after {attempt} attempts{failure.hint}"
            ) from exc
        delay = backoff_delay(
            attempt, self.backoff_base, self.backoff_cap, self._rng.random(), failure.retry_after
        )
        logger.warning(
            "claude attempt failed; retrying",
            extra={"variant": request.variant, "attempt": attempt, "cause": failure.cause,
                   "delay_s": round(delay, 3)},
        )
        self._sleep(delay)

    def _to_answer(self, message: Message, request: AnswerRequest) -> ModelAnswer:
        raw = "".join(block.text for block in message.content if block.type == "text")
        parsed = parse_output(raw, request.passages)
        if not parsed.text:
            raise ProviderError(
                f"Claude returned an empty answer (stop_reason={message.stop_reason}); "
                "falling back."
            )
        if not parsed.meta_ok:
            logger.warning(
                "claude answer without a readable meta block",
                extra={"variant": request.variant, "stop_reason": message.stop_reason},
            )
        usage = message.usage
        return ModelAnswer(
            text=parsed.text,
            cited_ids=parsed.cited_ids,
            provider=self.name,
            model=message.model,
            needs_human=parsed.needs_human,
            human_reason=parsed.reason,
            confidence=parsed.confidence,
            usage=Usage(
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cache_read_input_tokens=usage.cache_read_input_tokens or 0,
                cache_creation_input_tokens=usage.cache_creation_input_tokens or 0,
            ),
        )


def classify(exc: Exception, model: str, timeout: float) -> Failure:
    """Whether a failed attempt is worth retrying, and how to describe it."""
    if isinstance(exc, (anthropic.APITimeoutError, *_TIMEOUT_ERRORS)):
        return Failure(True, f"Claude timed out ({timeout:g}s per attempt)",
                       "; try again later or raise the timeout.")
    if isinstance(exc, StreamCutOff):
        return Failure(True, "Claude's stream ended early (no message_stop)", "; try again later.")
    if isinstance(exc, (anthropic.APIConnectionError, *_TRANSPORT_ERRORS)):
        detail = exc.__cause__ or exc
        return Failure(True, f"Could not reach Claude ({type(detail).__name__}: {detail})",
                       "; check the network or the Anthropic base URL.")
    if not isinstance(exc, anthropic.APIStatusError):
        return Failure(False, f"Claude sent an unexpected response ({exc})")
    status = exc.status_code
    if status == 200:  # an SSE ``error`` event inside a 200 stream
        status = _STATUS_OF_STREAM_ERROR.get(str(exc.type), 500)
    message = str(exc.api_message or exc.message)
    retry_after = parse_retry_after(exc.response.headers)
    if status == 429:
        return Failure(True, "Claude rate-limited (429)",
                       "; lower the traffic or raise the Anthropic rate limit.", retry_after)
    if status == 529 or exc.type == "overloaded_error":
        return Failure(True, "Claude overloaded (529)", "; try again later.", retry_after)
    if status in _RETRYABLE_STATUS:
        return Failure(True, f"Claude server error ({status})", "; try again later.", retry_after)
    if status == 401:
        return Failure(False, "Claude rejected the API key (401)", "; check ANTHROPIC_API_KEY.")
    if status == 403:
        return Failure(False, f"Claude refused the request (403: {message})",
                       f"; check that ANTHROPIC_API_KEY may use model {model!r}.")
    if status == 404:
        return Failure(False, f"Claude could not find it (404: {message})",
                       f"; check the model id {model!r}.")
    return Failure(False, f"Claude rejected the request ({status}: {message})")


def backoff_delay(
    attempt: int, base: float, cap: float, unit: float, retry_after: float | None = None
) -> float:
    """Seconds to wait after failed ``attempt`` (1-based).

    The server's ``retry-after`` when given (at most ``RETRY_AFTER_MAX_S``); otherwise full
    jitter: ``unit`` (uniform 0..1) times ``min(cap, base * 2**(attempt - 1))``.
    """
    if retry_after is not None and retry_after >= 0:
        return min(retry_after, RETRY_AFTER_MAX_S)
    return unit * min(cap, base * 2 ** (attempt - 1))


def parse_retry_after(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms``, or ``retry-after`` as seconds or an HTTP date."""
    ms = headers.get("retry-after-ms")
    try:
        if ms is not None:
            return float(ms) / 1000
        value = headers.get("retry-after")
        if value is None:
            return None
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(str(headers.get("retry-after")))
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
