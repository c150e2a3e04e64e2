"""``supportbot`` command line.

One module per command group: ``knowledge`` (ingest, search, stats), ``server`` (serve),
``evaluation`` (``supportbot eval run|retrieval|calibrate|csat``) and ``demo``
(``supportbot demo seed``); ``output`` holds what they share. Commands import what they run
lazily, so ``--help`` is fast and the core install runs without the evaluation extra.
"""

from __future__ import annotations

import sys

import typer

from app.cli import demo, evaluation, knowledge, server

app = typer.Typer(help="supportbot: grounded AI answers over your help center.",
                  no_args_is_help=True, add_completion=False)
app.command()(knowledge.ingest)
app.command()(knowledge.search)
app.command()(knowledge.stats)
app.command()(server.serve)
app.add_typer(evaluation.app, name="eval")
app.add_typer(demo.app, name="demo")


def main() -> None:  # pragma: no cover - console entry point
    try:
        app()
    except BrokenPipeError:
        sys.exit(0)


__all__ = ["app", "main"]
