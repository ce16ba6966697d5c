"""The ``rlsepi`` command.

The CLI only parses arguments, calls the library and writes files. Each subcommand lives in
:mod:`rlsepi.commands` as a module with ``register(subparsers)``; a mistake in the user's
input becomes a one-line ``rlsepi: error: …`` and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from rlsepi import __version__
from rlsepi.errors import RLSEpiError

__all__ = ["main", "build_parser", "COMMANDS"]

COMMANDS = ("simulate", "check", "params", "prevalence", "fit", "risk", "serve", "validate", "prs", "report",
            "power", "study", "diagnostic")
"""Subcommand modules in :mod:`rlsepi.commands`, in the order ``--help`` lists them."""

EXIT_OK, EXIT_CHECK_FAILED, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rlsepi",
        description="Epidemiology and genetics of Restless Legs Syndrome: calibrated synthetic cohorts, "
        "prevalence, polygenic risk scores and risk models.",
        epilog="Run 'rlsepi COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"rlsepi {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"rlsepi.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 a check failed, 2 bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except RLSEpiError as exc:
        print(f"rlsepi: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("rlsepi: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
