"""Claude as the correctness judge (used when ``ANTHROPIC_API_KEY`` is set).

The judge sees the customer's question, the reference answer and the assistant's answer, and
returns a verdict as JSON. Unparsable verdicts and API failures give ``None`` (no verdict), so
the resolution metric falls back to the offline similarity judge for that case.
"""

from __future__ import annotations

import json
import logging
import re

import anthropic

from app.config import Settings

log = logging.getLogger("supportbot.eval.judge")

JUDGE_PROMPT = """You grade a customer-support assistant's answer against a reference answer
written by an expert agent. The answer is CORRECT when it gives the customer the same key facts
and next steps as the reference (wording may differ; extra correct detail is fine), and
INCORRECT when it misses the key point, contradicts the reference, or answers another question.
Reply with JSON only: {"correct": true|false, "reason": "<one sentence>"}"""


class ClaudeJudge:
    """Grades answers with Claude.

    Args:
        api_key: Anthropic key.
        model: judge model.
        base_url: API endpoint (tests point it at a local fake server).
    """

    def __init__(self, api_key: str, model: str, base_url: str | None = None,
                 timeout: float = 30.0, max_retries: int = 2) -> None:
        self.model = model
        self._client = anthropic.Anthropic(api_key=api_key, base_url=base_url, timeout=timeout,
                                           max_retries=max_retries)
        self.failures = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> ClaudeJudge | None:
        if not settings.anthropic_api_key:
            return None
        return cls(settings.anthropic_api_key, settings.claude_model, settings.claude_base_url,
                   settings.claude_timeout, settings.claude_max_retries)

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
