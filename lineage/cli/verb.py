"""What a verb of the command line is: its arguments, the context it runs in, its result.

Every verb is one function ``(Context, argparse.Namespace) -> Result`` plus one
:class:`Verb` entry in its group's ``VERBS`` tuple. The function calls the library and
builds a JSON-safe dict, which ``--json`` prints as one document and the group's text
renderer shows to people. Verbs hold no logic of their own beyond that.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, NamedTuple

from lineage.errors import StoreError
from lineage.store import Store, open_store

__all__ = ["AS_OF", "EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_USAGE", "REASON", "Arg",
           "CommandError", "Context", "Result", "UsageError", "Verb", "arg", "key_value",
           "positive"]

EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130


class UsageError(Exception):
    """Arguments that parse but do not go together; exits 2 with the verb's usage."""


class CommandError(Exception):
    """A failure the CLI itself detects; exits 1 with its message."""


class Result(NamedTuple):
    """What a verb produced: ``data`` for ``--json``, ``text`` for people."""

    data: dict[str, Any]
    text: str
    code: int = 0
    error: str | None = None  # one line for stderr when ``code`` is non-zero


class Context:
    """The store a verb works on, opened on first use and closed after the verb."""

    __slots__ = ("_store", "path")

    def __init__(self, path: Path) -> None:
        self.path = path
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        """The existing store at ``path``; refuses to create one (that is ``init``'s job)."""
        if self._store is None:
            # An LMDB store directory always holds data.mdb once created.
            if not (self.path / "data.mdb").is_file():
                raise StoreError(
                    f"no lineage store at {self.path}; create one with `lineage init` "
                    "or point to one with --store or LINEAGE_HOME"
                )
            self._store = open_store(self.path)
        return self._store

    def create(self) -> Store:
        """Open the store at ``path``, creating it if needed."""
        self._store = open_store(self.path)
        return self._store

    def view(self, args: argparse.Namespace) -> Store:
        """The store, or its point-in-time view when the verb was given ``--as-of``."""
        when = getattr(args, "as_of", None)
        return self.store.as_of(when) if when is not None else self.store

    def close(self) -> None:
        """Close the store if it was opened."""
        if self._store is not None:
            self._store.close()


class Arg(NamedTuple):
    """One ``add_argument`` call: flags and options."""

    flags: tuple[str, ...]
    options: dict[str, Any]


def arg(*flags: str, **options: Any) -> Arg:
    """An argument of a verb, as ``parser.add_argument(*flags, **options)`` takes it."""
    return Arg(flags, options)


class Verb(NamedTuple):
    """A subcommand: its name, its function, a one-line help, and its arguments."""

    name: str
    run: Callable[[Context, argparse.Namespace], Result]
    help: str
    arguments: tuple[Arg, ...] = ()


def key_value(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` as a pair (an argparse type)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key, value


def positive(text: str) -> int:
    """A positive integer (an argparse type)."""
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return number


REASON: Final = arg("--reason", default="", help="why (kept in the ref history)")
def moment(text: str) -> str:
    """``--as-of DATE``: ISO 8601 text, checked here so a bad date is a usage error."""
    from lineage.core.plain import parse_time
    from lineage.errors import InvalidQuery

    try:
        parse_time(text, "--as-of")
    except InvalidQuery as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--as-of ")) from None
    return text


AS_OF: Final = arg("--as-of", type=moment, metavar="DATE", help="answer as the store stood then "
                   "(ISO 8601; local time unless an offset is given)")
