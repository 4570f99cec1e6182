"""Shared console output: errors with their code and hint, and the exit codes."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from pacsync.errors import PacsyncError

console = Console()
err = Console(stderr=True)

EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130

P = ParamSpec("P")
R = TypeVar("R")


def show_error(error: PacsyncError) -> None:
    err.print(f"[bold red]{error.code}[/] {error.message}", highlight=False, soft_wrap=True)
    err.print(f"[dim]hint:[/] {error.hint}", highlight=False, soft_wrap=True)


def reports_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn a PacsyncError escaping a command into a coded message and exit status."""

    @wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except PacsyncError as error:
            show_error(error)
            raise typer.Exit(EXIT_FAILED if error.transient else EXIT_CONFIG) from None

    return run


@contextmanager
def status(message: str) -> Iterator[Any]:
    with console.status(message) as spinner:
        yield spinner


def tune_collector() -> None:
    """A sync allocates millions of short-lived tuples and no cycles worth chasing: the
    start-up objects are frozen out of the collector and generation 0 is collected less
    often (measured ~10% of a full sync's CPU otherwise)."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
