"""Tickets: open, read, update, list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from app.api.deps import StoreDep
from app.api.schemas import TicketOut
from app.domain import Priority, TicketStatus

router = APIRouter(prefix="/api/v1/tickets", tags=["tickets"])


class TicketCreate(BaseModel):
    subject: str = Field(min_length=1, max_length=300)
    description: str = Field(default="", max_length=20_000)
    conversation_id: str | None = None
    priority: Priority = Priority.NORMAL
    assignee: str | None = None


class TicketPatch(BaseModel):
    status: TicketStatus | None = None
    priority: Priority | None = None
    assignee: str | None = None
    subject: str | None = Field(default=None, min_length=1, max_length=300)


@router.post("", response_model=TicketOut, status_code=status.HTTP_201_CREATED)
def create_ticket(body: TicketCreate, store: StoreDep) -> TicketOut:
    """Open a ticket (for a conversation, or on its own)."""
    return TicketOut.of(store.tickets.create(
        body.subject, description=body.description, conversation_id=body.conversation_id,
        priority=body.priority, assignee=body.assignee))


@router.get("/{ticket_id}", response_model=TicketOut)
def get_ticket(ticket_id: str, store: StoreDep) -> TicketOut:
    return TicketOut.of(store.tickets.get(ticket_id))


@router.patch("/{ticket_id}", response_model=TicketOut)
def update_ticket(ticket_id: str, body: TicketPatch, store: StoreDep) -> TicketOut:
    """Change status, priority, assignee or subject (only the fields given)."""
    changes = body.model_dump(exclude_unset=True)
    return TicketOut.of(store.tickets.update(ticket_id, **changes))


@router.get("", response_model=list[TicketOut])
def list_tickets(
    store: StoreDep, status: TicketStatus | None = None, conversation_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50, offset: Annotated[int, Query(ge=0)] = 0,
) -> list[TicketOut]:
    """Tickets, newest first (the agents' inbox)."""
    return [TicketOut.of(t) for t in store.tickets.find(
        status=status, conversation_id=conversation_id, limit=limit, offset=offset)]
