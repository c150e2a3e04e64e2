"""Sticky variant assignment, including two requests racing to assign the same user."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy.orm import Session

from app.errors import ValidationError
from app.store import Database, Store
from app.store.models import VariantAssignment
from app.store.variants import VariantRepository


def test_assignment_is_sticky(store: Store) -> None:
    assert store.variants.get("u1", "style") is None
    first = store.variants.assign("u1", "style", "concise")
    assert first.variant == "concise"
    assert store.variants.assign("u1", "style", "control") == first
    assert store.variants.get("u1", "style") == first
    # Other experiments, users and workspaces are independent.
    assert store.variants.assign("u1", "prompt", "control").variant == "control"
    assert store.variants.assign("u2", "style", "control").variant == "control"
    assert store.variants.assign("u1", "style", "control", workspace="acme").variant == "control"
    with pytest.raises(ValidationError):
        store.variants.assign("", "style", "control")


class RacingVariants(VariantRepository):
    """Holds every caller after its first (empty) lookup until all have looked, so the
    inserts truly race."""

    def __init__(self, db: Database, parties: int) -> None:
        super().__init__(db)
        self.barrier = threading.Barrier(parties)
        self.local = threading.local()
        self.lookups = 0

    def _lookup(
        self, session: Session, workspace: str, user_id: str, experiment: str
    ) -> VariantAssignment | None:
        row = super()._lookup(session, workspace, user_id, experiment)
        self.lookups += 1
        if not getattr(self.local, "waited", False):
            self.local.waited = True
            self.barrier.wait(timeout=30)
        return row


def test_concurrent_first_assignments_agree(store: Store, database: Database) -> None:
    repo = RacingVariants(database, parties=2)
    results: dict[str, str] = {}
    errors: list[BaseException] = []

    def assign(variant: str) -> None:
        try:
            results[variant] = repo.assign("racer", "style", variant).variant
        except BaseException as e:  # surfaced by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=assign, args=(v,)) for v in ("control", "concise")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results["control"] == results["concise"]  # the loser adopted the winner's variant
    assert repo.lookups == 3  # the loser's insert hit the unique constraint and it reread
    assert store.variants.get("racer", "style") is not None
    assert store.variants.get("racer", "style").variant == results["control"]  # type: ignore[union-attr]
