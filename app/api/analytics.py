"""Analytics: volume, AI resolution, escalation, channels, CSAT, response times, per variant."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from app.api.deps import SettingsDep, StoreDep
from app.errors import ValidationError
from app.services.analytics import analytics as build_report

router = APIRouter(prefix="/api/v1", tags=["analytics"])


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@router.get("/analytics")
def get_analytics(
    store: StoreDep, settings: SettingsDep,
    start: Annotated[datetime | None, Query(description="Conversations created at or after.")]
    = None,
    end: Annotated[datetime | None, Query(description="Conversations created before.")] = None,
    window_hours: Annotated[float | None, Query(gt=0, le=24 * 30)] = None,
    workspace: str | None = None,
) -> dict[str, Any]:
    """The analytics report; metric definitions are included in the response."""
    start_, end_ = _aware(start), _aware(end)
    if start_ and end_ and start_ >= end_:
        raise ValidationError("start must be before end")
    return build_report(store, start_, end_,
                        window_hours or settings.soft_resolution_window_hours, workspace)
