"""What every module that contributes ``codesuggest`` commands shares, whichever package it is in.

The CLI package (:mod:`pipeline.cli`) builds the parser and implements :class:`CommandRegistry`;
modules register their commands against the protocol (the service's through the
``codesuggest.commands`` entry points), so none of them imports the CLI package. The ``--json``
output contract (:func:`print_json`), reading a note argument and the exit codes live here too.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from pipeline.errors import InputError

EXIT_OK = 0
EXIT_ERROR = 2

Handler = Callable[[argparse.Namespace], "int | None"]


class CommandRegistry(Protocol):
    """What a command module's ``register(registry)`` function is handed.

    :class:`pipeline.cli.main.ArgparseRegistry` implements it.
    """

    def command(self, name: str, handler: Handler, help: str, group: str | None = None) -> argparse.ArgumentParser:
        """Add ``codesuggest [group] name``; the returned parser takes its arguments.

        Args:
            name: command name.
            handler: called with the parsed namespace; returns an exit code or None for 0.
            help: one-line help.
            group: optional group (``codes``, ``corpus``, ``kb``...), created on first use.

        Returns:
            The command's argument parser.
        """
        ...

    def group(self, name: str, help: str | None = None) -> Any:
        """Return (creating on first use) the sub-parsers action of a command group."""
        ...


def print_json(document: Any) -> None:
    """Print one JSON document on stdout (the ``--json`` contract of every command)."""
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read_text_arg(source: str) -> str:
    """Read a note from a file path or ``-`` (stdin), as UTF-8 with a clear error otherwise.

    Args:
        source: a path, or ``-`` for standard input.

    Returns:
        The text.

    Raises:
        InputError: the file is missing or not UTF-8 text.
    """
    if source == "-":
        data = sys.stdin.buffer.read()
        name = "standard input"
    else:
        path = Path(source)
        if not path.is_file():
            raise InputError(f"{source}: no such file")
        data = path.read_bytes()
        name = source
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
