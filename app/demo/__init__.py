"""Realistic live data for the notebooks and demos: past conversations replayed into the store.

``seed_store`` turns each record of ``knowledge/conversations/*.jsonl`` into one stored
conversation, written as the live service would have written it:

- the conversation keeps the record's channel and ``created_at`` (and its tier and tags in the
  metadata); its variant is ``app.responder.variants.assign`` on the record's conversation id
  (the rule for a customer), remembered as a sticky assignment like the service does;
- messages keep the recorded roles and texts, timestamped by a generator seeded with the
  conversation id (``plan.timeline``), so first-response times and daily volumes look real;
- an escalated record (``pipelines.conversations.is_escalated``: resolved by an agent, or
  tier 2) has its last assistant turn before the agent joins stored as an ``escalate`` reply,
  and a ticket opened there; the reason comes from the escalation rules' own detectors
  (sensitive topic, hand-off request, frustration), else ``model_requested``;
- feedback carries the record's CSAT, and ``resolved=True`` when the record was resolved;
- the conversation ends in the record's state: resolved, closed (abandoned), escalated (an open
  ticket) or open.

Given the turn policy (``ConversationService``, from ``app.container.build``) the assistant's
turns are generated instead: each customer message is posted through the service at its
planned time, which answers it, stores the reply with all its details and opens the ticket when
it escalates, so the live figures reflect what each variant does. Without one no model is
needed.

Modules: ``plan`` (what a record becomes: pure), ``seed`` (writing it). Seed the configured
store with ``supportbot demo seed [--respond]``.
"""

from app.demo.seed import SOURCE_KEY, SeedReport, existing_conversations, seed_store

__all__ = ["SOURCE_KEY", "SeedReport", "existing_conversations", "seed_store"]
