"""Sticky A/B assignments: a user keeps the first variant they were given in an experiment."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import ValidationError
from app.store.base import Repository
from app.store.choices import DEFAULT_WORKSPACE
from app.store.models import VariantAssignment
from app.store.records import VariantAssignmentRecord


class VariantRepository(Repository):
    """Variant assignments, one per (workspace, user, experiment).

    Example:
        >>> store.variants.assign("u1", "answer-style", "concise").variant
        'concise'
        >>> store.variants.assign("u1", "answer-style", "control").variant  # sticky
        'concise'
    """

    def get(
        self, user_id: str, experiment: str, *, workspace: str = DEFAULT_WORKSPACE
    ) -> VariantAssignmentRecord | None:
        """The user's assignment in the experiment, if any."""
        with self.db.session() as session:
            row = self._lookup(session, workspace, user_id, experiment)
            return None if row is None else VariantAssignmentRecord.from_row(row)

    def assign(
        self, user_id: str, experiment: str, variant: str, *, workspace: str = DEFAULT_WORKSPACE
    ) -> VariantAssignmentRecord:
        """The user's existing assignment, or ``variant`` newly assigned.

        Race-safe: when two requests assign the same user at once, the unique constraint lets
        one insert win and the other rereads and returns the winner's variant.
        """
        if not user_id or not experiment or not variant:
            raise ValidationError("user_id, experiment and variant must all be non-empty")
        when = self._now()

        def work(session: Session) -> VariantAssignmentRecord:
            row = self._lookup(session, workspace, user_id, experiment)
            if row is None:
                row = VariantAssignment(
                    workspace=workspace, user_id=user_id, experiment=experiment,
                    variant=variant, assigned_at=when,
                )
                session.add(row)
                session.flush()
            return VariantAssignmentRecord.from_row(row)

        return self._write("assign the variant", work)

    def _lookup(
        self, session: Session, workspace: str, user_id: str, experiment: str
    ) -> VariantAssignment | None:
        return session.scalar(
            select(VariantAssignment).where(
                VariantAssignment.workspace == workspace,
                VariantAssignment.user_id == user_id,
                VariantAssignment.experiment == experiment,
            )
        )
