"""Subcommands of the ``rlsepi`` command line, one module each (see :mod:`rlsepi.cli`)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from rlsepi.errors import RLSEpiError

DEFAULT_SEED = 20240601
"""Seed of the command line's default cohort and bootstraps."""

REPORT_N = 1_000_000
"""People in the default report's cohort: enough for the trimester bands (about 3,000 pregnant
women per trimester; at 200,000 people the +-3 point bands miss in about 11% of seeds)."""


def positive_int(text: str) -> int:
    """argparse type: a whole number > 0 (underscores allowed: 1_000_000)."""
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {value}")
    return value


def nonnegative_int(text: str) -> int:
    """argparse type: a whole number >= 0 (a seed, a count)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


seed_int = nonnegative_int


def fraction(*, closed: bool):
    """argparse type factory: a number in [0, 1] (``closed``) or in (0, 1)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got '{text}'") from None
        inside = 0.0 <= value <= 1.0 if closed else 0.0 < value < 1.0
        if not inside:
            raise argparse.ArgumentTypeError(f"must lie between 0 and 1{'' if closed else ' (exclusive)'}, got {value:g}")
        return value

    return parse


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


def add_mapping_options(parser: argparse.ArgumentParser) -> None:
    """--column and --code: how a user's file maps onto the cohort table."""
    parser.add_argument(
        "--column", action="append", default=[], metavar="OURS=YOURS",
        help="map a column of the cohort table to your file's column name, e.g. --column sex=gender "
        "(repeat for each column)",
    )
    parser.add_argument(
        "--code", action="append", default=[], metavar="COLUMN:CODE=VALUE",
        help="map a code in your file, e.g. --code sex:1=female --code rls:J=yes (repeat as needed); "
        "F/M, female/male, 1/2 (1 male, 2 female), 0/1, yes/no, true/false are understood without help; "
        "map a code to NA to treat it as missing",
    )
    parser.add_argument(
        "--allow-duplicate-ids", action="store_true",
        help="count rows that repeat a person_id as separate people, with a warning (default: refuse them)",
    )


def read_mapped_cohort(path: Path, args: argparse.Namespace, require: tuple[str, ...], *,
                       must_exist: tuple[str, ...] = (), outcome: str | None = "rls", boolean: tuple[str, ...] = (),
                       params=None):
    """Read a cohort file through the schema (:mod:`rlsepi.schema`), the one validation layer of
    every command that reads a cohort: apply --column/--code, check every plausibility rule,
    drop (and count) incomplete rows, and refuse a cohort too small to analyse or whose
    ``outcome`` has no cases or no non-cases."""
    from rlsepi.io import read_cohort
    from rlsepi.schema import harmonise, parse_codes, parse_columns, require_analysable

    require_file(path, "cohort file")
    columns, codes = parse_columns(args.column), parse_codes(args.code)  # before reading: cheap mistakes first
    df, report = harmonise(read_cohort(path), columns=columns, codes=codes, require=require, must_exist=must_exist,
                           boolean=boolean, allow_duplicate_ids=getattr(args, "allow_duplicate_ids", False),
                           params=params)
    require_analysable(df, outcome=outcome or "", report=report)
    return df, report


def emit(text: str, out: Path | None, *, force: bool) -> None:
    """A command's text output: to the screen, or written atomically to ``out``."""
    if out is None:
        sys.stdout.write(text)
        return
    from rlsepi.io import atomic_output

    with atomic_output(out, force=force, mode="w") as fh:
        fh.write(text)


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name the same file (resolving links; False when either does not exist)."""
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def check_outputs(outputs: list[Path | None], *, inputs: list[Path | None], force: bool) -> None:
    """Refuse, before any analysis runs, outputs that exist (without --force), sit in a folder that
    is missing or read-only, or name one of the inputs (even with --force)."""
    from rlsepi.io import check_output_path

    outs = [Path(o) for o in outputs if o is not None]
    ins = [Path(i) for i in inputs if i is not None]
    for o in outs:
        for i in ins:
            if same_file(o, i) or o.resolve() == i.resolve():
                raise RLSEpiError(f"output '{o}' is the input file '{i}'; rlsepi never overwrites its input, "
                                  "even with --force; choose another output name")
        check_output_path(o, force=force)
    resolved = [o.resolve() for o in outs]
    if len(set(resolved)) != len(resolved):
        raise RLSEpiError("two outputs of this command name the same file; give each its own name")
