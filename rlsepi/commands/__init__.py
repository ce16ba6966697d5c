"""Subcommands of the ``rlsepi`` command line, one module each (see :mod:`rlsepi.cli`)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from rlsepi.errors import RLSEpiError


def positive_int(text: str) -> int:
    """argparse type: a whole number > 0 (underscores allowed: 1_000_000)."""
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {value}")
    return value


def seed_int(text: str) -> int:
    """argparse type: a seed, a whole number >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def add_params_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--params", metavar="TOML", type=Path,
        help="override published parameters from a TOML file (see 'rlsepi params' for every key)",
    )


def command_line() -> str:
    """The command as typed, for provenance."""
    return " ".join(["rlsepi", *map(shlex.quote, sys.argv[1:])])


def require_file(path: Path, what: str = "input file") -> Path:
    if not path.exists():
        raise RLSEpiError(f"{what} '{path}' does not exist")
    if path.is_dir():
        raise RLSEpiError(f"{what} '{path}' is a folder; give a file")
    return path
