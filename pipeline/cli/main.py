"""The ``codesuggest`` command line.

Commands are registered by ``register(registry)`` functions, one module per command group in
this package (:mod:`pipeline.cli.kb`, :mod:`pipeline.cli.data`, :mod:`pipeline.cli.corpus`,
:mod:`pipeline.cli.notes`), and by other installed packages through the ``codesuggest.commands``
entry-point group against the :class:`~pipeline.commands.CommandRegistry` protocol (the service
contributes ``serve``, ``keys``, ``db`` and ``feedback`` that way, so pipeline/ never imports
service/ and nothing imports this package). Handlers import the heavy layers lazily so that
``codesuggest --help`` and ``codes lookup`` start fast.

Every expected failure is a :class:`~pipeline.errors.CodesuggestError`: it is printed as one line
on stderr and the process exits with code 2; no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from importlib import metadata

from pipeline import __version__
from pipeline.cli import corpus, data, kb, notes
from pipeline.commands import EXIT_ERROR, EXIT_OK, CommandRegistry, Handler
from pipeline.errors import CodesuggestError

logger = logging.getLogger(__name__)

# The command groups shipped with this package, in the order --help lists them.
BUILTIN_COMMANDS: tuple[Callable[[CommandRegistry], None], ...] = (
    kb.register,
    data.register,
    corpus.register,
    notes.register,
)


class ArgparseRegistry:
    """The :class:`~pipeline.commands.CommandRegistry` of the CLI: hands out argparse sub-parsers.

    Args:
        root: the top-level sub-parsers action.
    """

    def __init__(self, root: argparse._SubParsersAction) -> None:
        self._root = root
        self._groups: dict[str, argparse._SubParsersAction] = {}

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
        parent = self.group(group) if group else self._root
        parser = parent.add_parser(name, help=help, description=help)
        parser.set_defaults(handler=handler)
        return parser

    def group(self, name: str, help: str | None = None) -> argparse._SubParsersAction:
        """Return (creating on first use) the sub-parsers action of a command group."""
        if name not in self._groups:
            parser = self._root.add_parser(name, help=help or f"{name} commands")
            parser.set_defaults(handler=_group_help(parser))
            self._groups[name] = parser.add_subparsers(title=f"{name} commands", metavar="COMMAND")
        return self._groups[name]


def _group_help(parser: argparse.ArgumentParser) -> Handler:
    def show(_: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return EXIT_ERROR

    return show


def build_parser() -> argparse.ArgumentParser:
    """Build the full argument parser with every registered command."""
    parser = argparse.ArgumentParser(
        prog="codesuggest",
        description="Suggest ICD-10-CM, CPT and HCPCS codes for clinical notes, with evidence.",
    )
    parser.add_argument("--version", action="version", version=f"codesuggest {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    registry = ArgparseRegistry(sub)
    for register in BUILTIN_COMMANDS:
        register(registry)
    for entry in metadata.entry_points(group="codesuggest.commands"):
        try:
            plugin = entry.load()
        except ImportError as exc:  # an optional extra that is not installed
            logger.debug("command plugin %s unavailable: %s", entry.name, exc)
            continue
        plugin(registry)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        code = handler(args)
    except CodesuggestError as exc:
        sys.stderr.write(f"codesuggest: error: {exc}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("codesuggest: interrupted\n")
        return 130
    except BrokenPipeError:
        return EXIT_OK
    return EXIT_OK if code is None else code


if __name__ == "__main__":
    sys.exit(main())
