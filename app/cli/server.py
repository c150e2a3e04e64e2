"""``supportbot serve``: the HTTP API."""

from __future__ import annotations

from typing import Annotated

import typer

from app.config import get_settings


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8080).")] = None,
) -> None:
    """Serve the HTTP API."""
    import uvicorn

    from app.logs import configure
    from app.main import create_app

    settings = get_settings()
    configure(settings.log_level)
    uvicorn.run(create_app(settings), host=host or settings.host, port=port or settings.port,
                log_level=settings.log_level)
