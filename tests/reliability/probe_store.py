"""Open a possibly damaged store, verify it, read everything, and say what happened.

Usage: ``python probe_store.py STORE EXPECTED.json``; prints one JSON line:

- ``outcome``: ``refused`` (opening raised a LineageError), ``damaged`` (verify reported
  problems), ``clean`` (verify found nothing), or ``untyped`` (a bug: something other than
  a LineageError escaped, or verify raised instead of reporting);
- ``wrong``: revisions whose read gave content other than expected (must stay empty);
- ``reads``, ``typed``: reads attempted, and how many raised a LineageError.

A crash (a signal) or a hang shows as the process's exit status or the caller's timeout.
"""

from __future__ import annotations

import json
import sys
import tempfile
import traceback
from pathlib import Path

from _stores import Expected

import lineage
from lineage.core.hashing import digest_bytes, digest_file
from lineage.errors import LineageError


def probe(store_path: Path, expected: Expected) -> dict[str, object]:
    result: dict[str, object] = {"wrong": [], "reads": 0, "typed": 0}
    wrong: list[str] = result["wrong"]  # type: ignore[assignment]
    try:
        store = lineage.open(store_path)
    except LineageError as exc:
        return {**result, "outcome": "refused", "detail": str(exc)[:300]}
    try:
        report = store.verify()
    except LineageError as exc:
        return {**result, "outcome": "untyped", "detail": f"verify raised {exc!r}"}
    result["outcome"] = "clean" if report.ok else "damaged"
    result["detail"] = report.problems[:3]

    def attempt(revision: str, action: object) -> None:
        result["reads"] = int(result["reads"]) + 1  # type: ignore[call-overload]
        try:
            if not action():  # type: ignore[operator]
                wrong.append(revision)
        except LineageError:
            result["typed"] = int(result["typed"]) + 1  # type: ignore[call-overload]

    for revision, digest in expected.content.items():
        attempt(revision, lambda r=revision, d=digest: digest_bytes(
            store.read_bytes(r)).hex() == d)
    for revision, digest in expected.records.items():
        if not revision.startswith("run"):
            attempt(revision, lambda r=revision, d=digest: store.resolve(r).digest == d)
        else:
            attempt(revision, lambda d=digest: store.resolve(d).digest == d)
    with tempfile.TemporaryDirectory() as scratch:
        for index, (revision, files) in enumerate(expected.trees.items()):
            def tree(r: str = revision, f: dict[str, str] = files, i: int = index) -> bool:
                target = store.checkout(r, Path(scratch) / str(i))
                found = {str(p.relative_to(target)): digest_file(p).hex()
                         for p in target.rglob("*") if p.is_file()}
                return found == f
            attempt(revision, tree)
    for name in ("small", "config", "large"):
        attempt(f"log {name}", lambda n=name: bool(store.log(n)) and True)
    attempt("runs", lambda: store.runs(op="train") is not None)
    attempt("events", lambda: store.events() is not None)
    attempt("lint", lambda: store.lint() is not None)
    attempt("gc", lambda: store.gc(dry_run=True) is not None)
    store.close()
    return result


def main() -> None:
    store_path, expected_path = Path(sys.argv[1]), Path(sys.argv[2])
    try:
        result = probe(store_path, Expected.load(expected_path))
    except BaseException as exc:  # noqa: BLE001 - anything untyped is what we look for
        result = {"outcome": "untyped", "detail": f"{type(exc).__name__}: {exc}",
                  "traceback": traceback.format_exc()[-2000:], "wrong": []}
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
