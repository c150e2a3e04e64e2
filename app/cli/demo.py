"""``supportbot demo``: sample data for the notebooks and demos."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.output import fail, out
from app.config import get_settings
from app.errors import SupportbotError, ValidationError

app = typer.Typer(help="Sample data for the notebooks and demos.", no_args_is_help=True)


@app.command("seed")
def seed(
    conversations: Annotated[Path | None, typer.Option(
        help="Directory (or file) of *.jsonl conversation records (default: "
             "knowledge/conversations).")] = None,
    respond: Annotated[bool, typer.Option(
        "--respond", help="Answer each customer turn through the live turn policy and the "
                          "configured answer model (run 'supportbot ingest knowledge/' "
                          "first).")] = False,
) -> None:
    """Replay past conversations into the configured store, for the notebooks.

    The store is the one SUPPORTBOT_DATA_DIR or DATABASE_URL selects. Idempotent: a second run
    adds nothing, an interrupted one is finished."""
    from app.container import build
    from app.demo import seed_store
    from pipelines.conversations import CONVERSATIONS_DIR

    settings = get_settings()
    try:
        with build(settings) as engine:
            if respond and not engine.kb.manifest.counts().get("articles"):
                raise ValidationError(
                    f"the knowledge base in {settings.data_dir} is empty: run 'supportbot "
                    "ingest knowledge/' first, or seed without --respond")
            report = seed_store(engine.store, conversations or CONVERSATIONS_DIR,
                                engine.conversations if respond else None,
                                variants=engine.variants, workspace=settings.workspace)
    except SupportbotError as e:
        raise fail(e) from e
    out.print(report.summary(), highlight=False)
