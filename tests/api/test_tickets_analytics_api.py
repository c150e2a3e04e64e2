"""Tickets (open, read, update, list) and the analytics report, over SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.api.conftest import Api, unique

TICKETS = "/api/v1/tickets"
CONVERSATIONS = "/api/v1/conversations"
ANALYTICS = "/api/v1/analytics"


def conversation(api: Api, **body: Any) -> dict[str, Any]:
    response = api.client.post(CONVERSATIONS, json={"user_id": unique("user"), **body})
    assert response.status_code == 201, response.text
    return response.json()


def feedback(api: Api, conversation_id: str, **body: Any) -> None:
    response = api.client.post(f"{CONVERSATIONS}/{conversation_id}/feedback", json=body)
    assert response.status_code == 201, response.text


# ---- tickets ------------------------------------------------------------------------------

def test_ticket_create_read_update(api: Api) -> None:
    created = api.client.post(TICKETS, json={
        "subject": "Kettle stopped heating", "description": "Bought in March.",
        "priority": "high"})
    assert created.status_code == 201, created.text
    ticket = created.json()
    assert ticket["status"] == "open" and ticket["priority"] == "high"
    assert ticket["conversation_id"] is None and ticket["number"] >= 1
    assert ticket["subject"] == "Kettle stopped heating"
    assert ticket["description"] == "Bought in March."

    fetched = api.client.get(f"{TICKETS}/{ticket['id']}")
    assert fetched.status_code == 200 and fetched.json() == ticket

    patched = api.client.patch(f"{TICKETS}/{ticket['id']}",
                               json={"status": "pending", "assignee": "agent-7"})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["status"], body["assignee"], body["priority"]) == ("pending", "agent-7", "high")
    assert body["updated_at"] >= ticket["updated_at"]

    cleared = api.client.patch(f"{TICKETS}/{ticket['id']}",
                               json={"assignee": None, "priority": "low"}).json()
    assert (cleared["assignee"], cleared["priority"], cleared["status"]) == (None, "low",
                                                                             "pending")
    assert api.store.tickets.get(ticket["id"]).priority == "low"


@pytest.mark.parametrize(("patch", "field"), [
    ({"status": "done"}, "status"),
    ({"priority": "asap"}, "priority"),
    ({"subject": ""}, "subject"),
], ids=["status", "priority", "subject"])
def test_invalid_ticket_update_is_422_naming_the_field(api: Api, patch: dict[str, Any],
                                                       field: str) -> None:
    ticket = api.client.post(TICKETS, json={"subject": "Lamp flickers"}).json()
    response = api.client.patch(f"{TICKETS}/{ticket['id']}", json=patch)
    assert response.status_code == 422
    assert field in {str(e["loc"][-1]) for e in response.json()["detail"]}
    assert api.store.tickets.get(ticket["id"]).status == "open"


@pytest.mark.parametrize(("body", "field"), [
    ({}, "subject"),
    ({"subject": ""}, "subject"),
    ({"subject": "x", "priority": "asap"}, "priority"),
], ids=["missing-subject", "empty-subject", "bad-priority"])
def test_invalid_ticket_is_422_naming_the_field(api: Api, body: dict[str, Any],
                                                field: str) -> None:
    response = api.client.post(TICKETS, json=body)
    assert response.status_code == 422
    assert field in {str(e["loc"][-1]) for e in response.json()["detail"]}


def test_unknown_ticket_is_404(api: Api) -> None:
    missing = unique("no-such-ticket")
    for response in (api.client.get(f"{TICKETS}/{missing}"),
                     api.client.patch(f"{TICKETS}/{missing}", json={"status": "solved"})):
        assert response.status_code == 404
        assert missing in response.json()["detail"]


def test_ticket_for_an_unknown_conversation_is_404(api: Api) -> None:
    missing = unique("no-such-conversation")
    response = api.client.post(TICKETS, json={"subject": "Help", "conversation_id": missing})
    assert response.status_code == 404
    assert missing in response.json()["detail"]


def test_conversation_ticket_is_listed_and_a_second_open_one_is_refused(api: Api) -> None:
    conv = conversation(api)["conversation"]
    first = api.client.post(TICKETS, json={"subject": "Refund question",
                                           "conversation_id": conv["id"]})
    assert first.status_code == 201, first.text
    second = api.client.post(TICKETS, json={"subject": "Another one",
                                            "conversation_id": conv["id"]})
    assert second.status_code == 422
    assert "already has open ticket" in second.json()["detail"]
    listed = api.client.get(TICKETS, params={"conversation_id": conv["id"]})
    assert listed.status_code == 200
    assert [t["id"] for t in listed.json()] == [first.json()["id"]]
    assert api.client.get(TICKETS, params={"conversation_id": conv["id"],
                                           "status": "solved"}).json() == []
    assert api.client.get(TICKETS, params={"status": "bogus"}).status_code == 422


def test_escalations_update_the_open_ticket_and_open_a_new_one_once_solved(api: Api) -> None:
    body = conversation(api, initial_message="let me talk to a person")
    conv_id, ticket = body["conversation"]["id"], body["ticket"]
    assert ticket["reason_code"] == "explicit_request" and ticket["priority"] == "normal"
    again = api.client.post(f"{CONVERSATIONS}/{conv_id}/messages",
                            json={"message": "someone hacked my account"}).json()
    assert again["ticket"]["id"] == ticket["id"]
    assert (again["ticket"]["reason_code"], again["ticket"]["priority"]) == (
        "account_takeover", "urgent")
    solved = api.client.patch(f"{TICKETS}/{ticket['id']}", json={"status": "solved"})
    assert solved.status_code == 200
    later = api.client.post(f"{CONVERSATIONS}/{conv_id}/messages",
                            json={"message": "I want to speak to an agent"}).json()
    assert later["ticket"]["id"] != ticket["id"] and later["ticket"]["status"] == "open"
    listed = api.client.get(TICKETS, params={"conversation_id": conv_id}).json()
    assert {t["id"] for t in listed} == {ticket["id"], later["ticket"]["id"]}


# ---- analytics ----------------------------------------------------------------------------

def test_analytics_matches_a_scripted_scenario(api: Api) -> None:
    space = unique("ws")
    resolved = conversation(api, workspace=space, channel="web", variant="control",
                            initial_message="How do I start a return?")
    escalated = conversation(api, workspace=space, channel="sms", variant="concise_empathetic",
                             initial_message="let me talk to a person")
    answered = conversation(api, workspace=space, channel="sms", variant="control",
                            initial_message="How do I cancel my Lumen Plus membership?")
    assert [b["reply"]["decision"] for b in (resolved, escalated, answered)] == [
        "answer", "escalate", "answer"]
    feedback(api, resolved["conversation"]["id"], resolved=True, csat=5)
    feedback(api, escalated["conversation"]["id"], csat=1)
    feedback(api, answered["conversation"]["id"], csat=3, resolved=False)
    conversation(api, workspace=unique("other-ws"), channel="email", variant="control",
                 initial_message="let me talk to a person")  # another workspace: not counted

    response = api.client.get(ANALYTICS, params={"workspace": space})
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["total_conversations"] == 3
    assert report["escalated"] == 1
    assert report["escalation_rate"] == round(1 / 3, 4)
    assert report["escalation_reasons"] == {"explicit_request": 1}
    assert report["channel_distribution"] == {"web": 1, "sms": 2}
    assert report["csat_average"] == 3.0 and report["csat_responses"] == 3
    assert report["ai_resolution_rate_hard"] == round(1 / 3, 4)
    # The headline: engaged, not escalated, not marked unresolved (only `resolved`).
    assert report["ai_resolution_rate"] == round(1 / 3, 4)
    assert report["engaged_conversations"] == 3
    # Soft resolution needs the 24 h return window to have passed: nothing is eligible yet.
    assert report["soft_eligible"] == 0 and report["ai_resolution_rate_soft"] is None
    assert report["first_response_p50_s"] >= 0.0

    control, concise = report["variants"]["control"], report["variants"]["concise_empathetic"]
    assert set(report["variants"]) == {"control", "concise_empathetic"}
    assert (control["total_conversations"], control["escalated"],
            control["escalation_rate"]) == (2, 0, 0.0)
    assert control["csat_average"] == 4.0 and control["ai_resolution_rate_hard"] == 0.5
    assert control["channel_distribution"] == {"web": 1, "sms": 1}
    assert control["escalation_reasons"] == {}
    assert (concise["total_conversations"], concise["escalated"],
            concise["escalation_rate"]) == (1, 1, 1.0)
    assert concise["csat_average"] == 1.0 and concise["ai_resolution_rate_hard"] == 0.0
    assert concise["channel_distribution"] == {"sms": 1}
    assert concise["escalation_reasons"] == {"explicit_request": 1}
    assert set(report["definitions"]) >= {"ai_resolution_rate", "ai_resolution_rate_hard",
                                          "escalation_rate"}

    # With a return window that has already elapsed, the two unescalated conversations of
    # three different users are soft-resolved.
    soft = api.client.get(ANALYTICS, params={"workspace": space,
                                             "window_hours": 0.000001}).json()
    assert soft["soft_eligible"] == 3
    assert soft["ai_resolution_rate_soft"] == round(2 / 3, 4)
    assert soft["ai_resolution_rate"] == round(1 / 3, 4)  # the window doesn't change it
    assert soft["variants"]["control"]["ai_resolution_rate_soft"] == 1.0
    assert soft["variants"]["control"]["ai_resolution_rate"] == 0.5  # one marked unresolved
    assert soft["variants"]["concise_empathetic"]["ai_resolution_rate"] == 0.0


def test_analytics_start_and_end_filter_by_creation_time(api: Api) -> None:
    space = unique("ws")
    conversation(api, workspace=space, channel="email", initial_message="let me talk to a person")
    between = datetime.now(UTC)
    conversation(api, workspace=space, channel="voice")

    def report(**params: str) -> dict[str, Any]:
        response = api.client.get(ANALYTICS, params={"workspace": space, **params})
        assert response.status_code == 200, response.text
        return response.json()

    everything, later, earlier = (report(), report(start=between.isoformat()),
                                  report(end=between.isoformat()))
    assert everything["total_conversations"] == 2
    assert later["total_conversations"] == 1 and later["channel_distribution"] == {"voice": 1}
    assert later["escalated"] == 0 and later["escalation_reasons"] == {}
    assert earlier["total_conversations"] == 1
    assert earlier["channel_distribution"] == {"email": 1}
    assert earlier["escalation_reasons"] == {"explicit_request": 1}
    past = report(start="2000-01-01T00:00:00+00:00", end="2000-01-02T00:00:00+00:00")
    assert past["total_conversations"] == 0
    assert past["escalation_rate"] is None and past["channel_distribution"] == {}


def test_analytics_refuses_an_empty_range(api: Api) -> None:
    response = api.client.get(ANALYTICS, params={"start": "2026-02-01T00:00:00Z",
                                                 "end": "2026-01-01T00:00:00Z"})
    assert response.status_code == 422
    assert "start" in response.json()["detail"]
    assert api.client.get(ANALYTICS, params={"window_hours": 0}).status_code == 422
