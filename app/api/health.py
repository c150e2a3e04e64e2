"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    model_loaded: bool
    collections: dict[str, dict[str, int]]


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", response_model=Ready)
def readyz(request: Request, response: Response) -> Ready:
    """Ready when the model is loaded and the index opened (503 until then)."""
    kb = request.app.state.components.kb
    ready = bool(getattr(request.app.state, "ready", False))
    if not ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    counts = kb.manifest.counts()
    return Ready(status="ready" if ready else "starting", model_loaded=kb.embedder_loaded,
                 collections=counts)
