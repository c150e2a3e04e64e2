"""Claude as the evaluation's judge: one configuration, one way to its client, two uses.

- ``ClaudeJudge`` grades correctness (used by the runner when ``ANTHROPIC_API_KEY`` is set): it
  sees the customer's question, the reference answer and the assistant's answer, and returns a
  verdict as JSON. Unparsable verdicts and API failures give ``None`` (no verdict), so the
  resolution metric falls back to the offline similarity judge for that case.
- ``eval.metrics.ragas_bridge.RagasJudge`` scores faithfulness and answer relevancy with the same
  ``JudgeConfig`` (its ``async_client``).

Both build their Anthropic client through ``app.responder.providers.anthropic.
client_from_settings``, the one place a client is made from settings, so the key check, the
endpoint, the timeout and the SDK's retries are read the same way as for the answer model.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass

import anthropic

from app.config import Settings
from app.errors import ConfigError
from app.responder.providers.anthropic import client_from_settings

log = logging.getLogger("supportbot.eval.judge")

JUDGE_PROMPT = """You grade a customer-support assistant's answer against a reference answer
written by an expert agent. The answer is CORRECT when it gives the customer the same key facts
and next steps as the reference (wording may differ; extra correct detail is fine), and
INCORRECT when it misses the key point, contradicts the reference, or answers another question.
Reply with JSON only: {"correct": true|false, "reason": "<one sentence>"}"""


@dataclass(frozen=True)
class JudgeConfig:
    """Which Claude judges, and how it is called.

    Args:
        api_key: Anthropic key; empty → ``ConfigError``.
        model: judge model.
        base_url: API endpoint; None uses the SDK default (tests point it at a fake server).
        timeout: seconds per request.
        max_retries: the SDK's retries on 429/5xx/connection errors/timeouts.

    Example:
        >>> config = JudgeConfig.from_settings(get_settings())
        >>> config.client().messages.create(model=config.model, ...)
    """

    api_key: str | None
    model: str
    base_url: str | None = None
    timeout: float = 30.0
    max_retries: int = 2

    def __post_init__(self) -> None:
        if not self.api_key:
            raise ConfigError("The Claude judge needs an Anthropic API key: set "
                              "ANTHROPIC_API_KEY (or SUPPORTBOT_ANTHROPIC_API_KEY), or evaluate "
                              "without a judge.")
        if self.timeout <= 0 or self.max_retries < 0:
            raise ValueError(f"Need timeout > 0 and max_retries >= 0; got timeout="
                             f"{self.timeout}, max_retries={self.max_retries}.")

    @classmethod
    def from_settings(cls, settings: Settings) -> JudgeConfig | None:
        """The configured Claude (``ANTHROPIC_API_KEY``, ``SUPPORTBOT_CLAUDE_*``), or None
        without a key."""
        if not settings.anthropic_api_key:
            return None
        return cls(settings.anthropic_api_key, settings.claude_model, settings.claude_base_url,
                   settings.claude_timeout, settings.claude_max_retries)

    def settings(self) -> Settings:
        """These values as the ``Settings`` fields ``client_from_settings`` reads (nothing
        else is read from the environment)."""
        return Settings.model_construct(
            anthropic_api_key=self.api_key, claude_model=self.model,
            claude_base_url=self.base_url, claude_timeout=self.timeout,
            claude_max_retries=self.max_retries)

    def client(self) -> anthropic.Anthropic:
        """A client for this judge."""
        return client_from_settings(self.settings())

    def async_client(self) -> anthropic.AsyncAnthropic:
        """The same client, async (ragas awaits its judge calls); the caller closes it."""
        with self.client() as sync:
            return anthropic.AsyncAnthropic(api_key=sync.api_key, base_url=sync.base_url,
                                            timeout=sync.timeout, max_retries=sync.max_retries)


class ClaudeJudge:
    """Grades answers with Claude.

    Args:
        api_key: Anthropic key.
        model: judge model.
        base_url: API endpoint (tests point it at a local fake server).
        timeout, max_retries: as in ``JudgeConfig``.

    Attributes:
        failures: API calls that failed (after the SDK's retries).

    Example:
        >>> judge = ClaudeJudge.from_settings(get_settings())
        >>> judge("Refund window?", "30 days from delivery.", "You have 30 days.")
        True
    """

    def __init__(self, api_key: str | None, model: str, base_url: str | None = None,
                 timeout: float = 30.0, max_retries: int = 2) -> None:
        self.config = JudgeConfig(api_key, model, base_url, timeout, max_retries)
        self._client = self.config.client()
        self.failures = 0

    @property
    def model(self) -> str:
        return self.config.model

    @classmethod
    def from_settings(cls, settings: Settings) -> ClaudeJudge | None:
        """The configured judge, or None when no Anthropic key is set."""
        config = JudgeConfig.from_settings(settings)
        if config is None:
            return None
        return cls(config.api_key, config.model, config.base_url, config.timeout,
                   config.max_retries)

    def __call__(self, question: str, reference: str, answer: str) -> bool | None:
        content = (f"<question>{question}</question>\n<reference>{reference}</reference>\n"
                   f"<answer>{answer}</answer>")
        try:
            message = self._client.messages.create(
                model=self.model, max_tokens=200, system=JUDGE_PROMPT,
                messages=[{"role": "user", "content": content}])
        except anthropic.APIError as e:
            self.failures += 1
            log.warning("judge call failed: %s", e)
            return None
        text = "".join(getattr(b, "text", "") for b in message.content)
        return parse_verdict(text)


def parse_verdict(text: str) -> bool | None:
    """``correct`` from the judge's JSON (found anywhere in the text), else ``None``.

    >>> parse_verdict('Sure. {"correct": true, "reason": "same steps"}')
    True
    """
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            verdict, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(verdict, dict) and isinstance(verdict.get("correct"), bool):
            return bool(verdict["correct"])
    return None
