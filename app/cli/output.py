"""What every command shares: the consoles, errors as ``error: …`` naming the fix, and the
evaluation extra's absence turned into the command that installs it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

# soft_wrap: never hard-wrap lines (a wrapped "file:line" can no longer be grepped).
err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

INSTALL_EVAL = "install the evaluation extra: pip install 'supportbot[eval]'"
# The import names of the packages in pyproject.toml's ``eval`` extra.
EVAL_EXTRA_MODULES = frozenset({
    "ragas", "langchain_community", "instructor", "rouge_score", "pandas", "pyarrow",
    "matplotlib", "nbclient", "nbformat", "ipykernel",
})


def fail(e: Exception | str, code: int = 2) -> typer.Exit:
    """Print ``error: …`` on stderr; the caller raises the returned ``typer.Exit``."""
    err.print(f"[red]error:[/red] {escape(str(e))}", highlight=False)
    return typer.Exit(code)


@contextmanager
def eval_extra() -> Iterator[None]:
    """Run a command that needs the evaluation stack: without it, say how to install it
    instead of printing a traceback."""
    try:
        yield
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] not in EVAL_EXTRA_MODULES:
            raise
        raise fail(f"{INSTALL_EVAL} (missing module {e.name!r})") from e
