"""The ``rlsepi`` command.

The CLI only parses arguments, calls the library and writes files. Each subcommand lives in
:mod:`rlsepi.commands` as a module with ``register(subparsers)``.

The contract every command keeps (see the README):

- exit 0 on success; 1 when a target or check is missed; 2 for bad input (a usage error, a
  file that cannot be read or written, a cohort the schema refuses), always with one line
  ``rlsepi: error: ...`` on the error stream and never a traceback;
- exit 3 for a bug in rlsepi (any other exception): one line saying so and how to report it;
  the traceback only with ``--debug`` or ``RLSEPI_DEBUG=1``;
- SIGINT and SIGTERM stop the command cleanly (exit 130 and 143): temporary files are
  removed and worker processes stopped;
- warnings reach the user as ``rlsepi: warning: ...`` lines.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import os
import signal
import sys
import traceback
import warnings
from collections.abc import Iterator, Sequence
from typing import NoReturn

from rlsepi import __version__
from rlsepi.errors import RLSEpiError

__all__ = ["main", "run", "build_parser", "COMMANDS", "EXIT_OK", "EXIT_CHECK_FAILED", "EXIT_USAGE", "EXIT_BUG"]

COMMANDS = ("simulate", "check", "params", "prevalence", "fit", "risk", "serve", "validate", "prs", "report",
            "power", "study", "diagnostic")
"""Subcommand modules in :mod:`rlsepi.commands`, in the order ``--help`` lists them."""

EXIT_OK, EXIT_CHECK_FAILED, EXIT_USAGE, EXIT_BUG = 0, 1, 2, 3
EXIT_SIGINT, EXIT_SIGTERM = 128 + signal.SIGINT, 128 + signal.SIGTERM

BUG_REPORT = "please report it with the command you ran and the output of the same command with RLSEPI_DEBUG=1"

# OS errors that are the user's environment, not a bug: a clear line and exit 2
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT, errno.ENOTDIR,
                       errno.EISDIR, errno.EDQUOT, errno.EEXIST, errno.ENAMETOOLONG, errno.EMFILE}


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when SIGTERM arrives, so that cleanup code runs."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors: ``rlsepi COMMAND: error: ...; see 'rlsepi COMMAND --help'``."""

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {_one_line(message)}; see '{self.prog} --help'\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rlsepi",
        description="Epidemiology and genetics of Restless Legs Syndrome: calibrated synthetic cohorts, "
        "prevalence, polygenic risk scores and risk models.",
        epilog="Run 'rlsepi COMMAND --help' for the options of a command. Exit codes: 0 success, 1 a target or "
        "check missed, 2 bad input, 3 a bug in rlsepi (please report it).",
    )
    parser.add_argument("--version", action="version", version=f"rlsepi {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="on an unexpected error, print the full traceback (same as RLSEPI_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f"rlsepi.commands.{name}").register(sub)
    return parser


def _debug_wanted(args: argparse.Namespace | None) -> bool:
    env = os.environ.get("RLSEPI_DEBUG", "").strip().lower()
    return bool(getattr(args, "debug", False)) or env not in ("", "0", "false", "no")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


@contextlib.contextmanager
def _signals() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` in the main thread (like SIGINT raises KeyboardInterrupt),
    so that ``finally`` blocks remove temporary files and stop workers."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum: int, frame: object) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _format_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                    file: object = None, line: str | None = None) -> None:
    print(f"rlsepi: warning: {_one_line(str(message))}", file=sys.stderr)


@contextlib.contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """Every warning shown during a command becomes one ``rlsepi: warning: ...`` line (each once)."""
    with warnings.catch_warnings():  # restores showwarning and the filters afterwards
        warnings.showwarning = _format_warning
        yield


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 a check failed, 2 bad input, 3 a bug).

    argparse's own usage errors raise ``SystemExit(2)`` as usual (and ``--help`` ``SystemExit(0)``).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = _debug_wanted(args)
    try:
        with _signals(), _warnings_as_lines():
            return int(args.run(args) or 0)
    except RLSEpiError as exc:
        print(f"rlsepi: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except Terminated:
        print("rlsepi: terminated; nothing was written", file=sys.stderr)
        return EXIT_SIGTERM
    except KeyboardInterrupt:
        print("rlsepi: interrupted; nothing was written", file=sys.stderr)
        return EXIT_SIGINT
    except BrokenPipeError:
        # the reader went away (e.g. `rlsepi params | head`): not an error; silence the final flush
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except MemoryError:
        print("rlsepi: error: out of memory; use a smaller input or --n, or a machine with more memory",
              file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        if exc.errno in _ENVIRONMENT_ERRNOS:
            where = f" '{exc.filename}'" if exc.filename else ""
            fix = {errno.ENOSPC: "free some space or write elsewhere",
                   errno.EDQUOT: "free some space or write elsewhere"}.get(exc.errno, "check the path and its permissions")
            print(f"rlsepi: error: {exc.strerror or exc}{where}; {fix}", file=sys.stderr)
            if debug:
                traceback.print_exc()
            return EXIT_USAGE
        return _bug(exc, debug)
    except Exception as exc:  # noqa: BLE001 - the point: any other exception is a bug
        return _bug(exc, debug)


def _bug(exc: BaseException, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    detail = _one_line(str(exc))[:200]
    print(f"rlsepi: bug: unexpected {type(exc).__name__}{': ' + detail if detail else ''}. This is a bug in "
          f"rlsepi {__version__}, not in your input; {BUG_REPORT}", file=sys.stderr)
    return EXIT_BUG


def run() -> NoReturn:
    """The program ``rlsepi`` (and ``python -m rlsepi.cli``): :func:`main`, then exit with its code.

    Before exiting, the command's garbage is collected (its finalizers run, as at any exit) and
    what is left is frozen (:func:`gc.freeze`): those objects, numpy's, pandas', scipy's and
    numba's (about 150,000), live until the process ends, and the interpreter's shutdown would
    otherwise walk them in several full garbage collections, about 0.25 s of CPU after a PRS run
    (``benchmarks/prs_startup.py``). Called in-process (tests), :func:`main` does not freeze anything.
    """
    import gc

    code = main()
    gc.collect()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
