"""Comparing two versions of a table: rows added, removed and modified, schema, class balance.

Any table is compared this way whatever its kind: a DataFrame, or a CSV, TSV, Parquet or
JSON-lines file (profiled when it was added). Rows are compared as multisets of 64-bit row
fingerprints (``pandas.util.hash_pandas_object(df, index=False)``). When both versions have
the same columns, the fingerprints recorded at log time (``summary["row_fingerprints"]``)
are used and nothing is loaded, except what is shown. When the columns differ, the tables
are loaded and re-fingerprinted on the columns they share; a retyped column is kept only if
one side casts losslessly to the other's type.

With a **key** column, a removed row and an added row with the same key are one row
*modified*, reported with the old and new values of the columns that changed. The key is
the column declared at add time (``key=``, kept as ``summary["key"]``) or else an obvious
one: a column both versions have, named like an identifier (``id``, ``pid``, ``mrn``,
``patient_id``, ``PatientID`` ...), of integers or text, complete and unique on both
sides. Only the key column of each version is read, and only when rows were both removed
and added.

Only what is shown is read: the example rows (``examples`` per side) are read by position,
for Parquet from the row groups that hold them (:func:`lineage.adapters.tables.read_table`
over :class:`lineage.storage.blobs.BlobFile`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lineage.adapters.tables import PROFILE_LIMIT, TABLE_FORMATS, read_table
from lineage.core.hashing import Digest
from lineage.core.plain import same_value
from lineage.core.records import Artifact
from lineage.diff.model import ClassShift, ColumnChange, DatasetDiff, RowChange, ValueChange
from lineage.errors import UnsupportedValue
from lineage.storage import schema
from lineage.storage.base import Backend, ReadTxn
from lineage.storage.blobs import BlobFile, read_blob

if TYPE_CHECKING:
    import numpy
    import pandas


__all__ = ["cell", "dataset_diff", "is_dataset", "load_frame", "profiled", "row_changes"]

_KEY_NAME = re.compile(r"(?i:id|key|pid|uid|uuid|guid|mrn)|.*(?i:[_\W]id)|.*[a-z0-9](?:Id|ID)")


def is_dataset(artifact: Artifact) -> bool:
    """Whether ``artifact`` carries a tabular dataset summary."""
    return artifact.kind == "dataset" or "columns" in artifact.summary


def profiled(backend: Backend, txn: ReadTxn, artifact: Artifact) -> Artifact:
    """``artifact`` with a table summary computed now (same identity, nothing stored) when
    it is a table file stored without one (added before table files were profiled whatever
    their kind); ``artifact`` itself otherwise, or when it cannot be read as a table.

    Raises:
        IntegrityError: the content read does not match its digest.
    """
    fmt = artifact.format
    if ("columns" in artifact.summary or fmt not in TABLE_FORMATS or artifact.blob is None
            or artifact.size > PROFILE_LIMIT):
        return artifact
    try:
        from lineage.adapters.pandas import frame_summary

        frame = read_table(BlobFile(backend, txn, artifact.blob), fmt)
        summary = frame_summary(frame, target=artifact.summary.get("target"))
    except (ImportError, UnsupportedValue):
        return artifact
    return artifact.replace(summary={**artifact.summary, **summary},
                            _digest=artifact.raw_digest)


def dataset_diff(backend: Backend, txn: ReadTxn, a: Artifact, b: Artifact,
                 examples: int) -> DatasetDiff:
    """Rows, columns, target, class balance and missing values of ``a`` against ``b``."""
    sa, sb = a.summary, b.summary
    cols_a, cols_b = _columns(sa), _columns(sb)
    types_a, types_b = dict(cols_a), dict(cols_b)
    common = [name for name, _ in cols_a if name in types_b]
    missing_a, missing_b = sa.get("missing") or {}, sb.get("missing") or {}
    missing = tuple(
        ValueChange(name, missing_a.get(name), missing_b.get(name))
        for name in sorted(common)
        if missing_a.get(name) != missing_b.get(name)
    )
    target_a, target_b = sa.get("target"), sb.get("target")
    rows = _Rows(backend, txn, a, b, examples).compare(cols_a, cols_b)
    return DatasetDiff(
        rows_old=_int(sa.get("rows")),
        rows_new=_int(sb.get("rows")),
        columns_added=tuple(ColumnChange(n, None, t) for n, t in cols_b if n not in types_a),
        columns_removed=tuple(ColumnChange(n, t, None) for n, t in cols_a if n not in types_b),
        columns_retyped=tuple(ColumnChange(n, types_a[n], types_b[n]) for n in sorted(common)
                              if types_a[n] != types_b[n]),
        target=ValueChange("target", target_a, target_b) if target_a != target_b else None,
        class_distribution=_class_shift(sa.get("class_distribution"),
                                        sb.get("class_distribution")),
        missing=missing,
        target_column=target_a if target_a == target_b and isinstance(target_a, str) else None,
        **rows,
    )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _columns(summary: dict[str, Any]) -> list[tuple[str, str]]:
    return [(str(pair[0]), str(pair[1])) for pair in summary.get("columns") or []
            if isinstance(pair, list | tuple) and len(pair) == 2]


def _class_shift(old: Any, new: Any) -> tuple[ClassShift, ...]:
    old, new = old or {}, new or {}
    if not isinstance(old, dict) or not isinstance(new, dict) or old == new:
        return ()
    total_old, total_new = sum(old.values()), sum(new.values())
    return tuple(
        ClassShift(
            label, old.get(label, 0), new.get(label, 0),
            old.get(label, 0) / total_old if total_old else None,
            new.get(label, 0) / total_new if total_new else None,
        )
        for label in sorted(set(old) | set(new), key=str)
    )


# -- rows ----------------------------------------------------------------------------------


class _Rows:
    """The row comparison of one pair of tables, reading each side at most a few times."""

    def __init__(self, backend: Backend, txn: ReadTxn, a: Artifact, b: Artifact,
                 examples: int) -> None:
        self.backend, self.txn, self.a, self.b, self.examples = backend, txn, a, b, examples
        self.frames: tuple[pandas.DataFrame, pandas.DataFrame] | None = None

    def compare(self, cols_a: list[tuple[str, str]], cols_b: list[tuple[str, str]]
                ) -> dict[str, Any]:
        compared_on: tuple[str, ...] | None = None
        old = new = None
        if cols_a == cols_b:
            old, new = _fingerprints(self.backend, self.txn, self.a), _fingerprints(
                self.backend, self.txn, self.b)
        if old is None or new is None:
            left, right = self.read(self.a), self.read(self.b)
            if left is None or right is None:
                why = ("no row fingerprints were recorded" if cols_a == cols_b
                       else "the columns differ")
                return {"rows_note": f"rows not compared: {why} and the tables cannot be read"}
            self.frames = (left, right)
            compared_on, old, new = _shared_fingerprints(left, right)
            if not compared_on:
                return {"rows_note": "rows not compared: the versions share no comparable column"}
        removed, added = row_changes(old, new)
        out: dict[str, Any] = {"rows_compared_on": compared_on}
        pairs: list[tuple[int, int]] = []
        key = self.key(cols_a, cols_b) if len(removed) and len(added) else None
        if key is not None:
            import numpy
            import pandas

            out["key"], keys_old, keys_new = key
            at = pandas.Index(keys_new[added]).get_indexer(keys_old[removed])
            matched = at >= 0
            pairs = list(zip(removed[matched].tolist(), added[at[matched]].tolist(), strict=True))
            removed, added = removed[~matched], numpy.delete(added, at[matched])
            out["rows_modified"] = len(pairs)
        out["rows_removed"], out["rows_added"] = len(removed), len(added)
        if self.examples:
            out.update(self.shown(removed.tolist(), added.tolist(), pairs, out.get("key")))
        return out

    def shown(self, removed: list[int], added: list[int], pairs: list[tuple[int, int]],
              key: str | None) -> dict[str, Any]:
        """Example rows: removed, added, and modified ones with the cells that changed."""
        k = self.examples
        pairs = pairs[:k]
        old_rows = self.rows(self.a, 0, removed[:k] + [p[0] for p in pairs])
        new_rows = self.rows(self.b, 1, added[:k] + [p[1] for p in pairs])
        n_removed, n_added = min(k, len(removed)), min(k, len(added))
        out: dict[str, Any] = {"examples_removed": tuple(old_rows[:n_removed]),
                               "examples_added": tuple(new_rows[:n_added])}
        if key is not None and old_rows and new_rows:
            out["examples_modified"] = tuple(
                _row_change(key, before, after)
                for before, after in zip(old_rows[n_removed:], new_rows[n_added:], strict=True))
        return out

    def rows(self, artifact: Artifact, side: int, positions: list[int]) -> list[dict[str, Any]]:
        """The rows at ``positions`` as JSON-safe dicts (``[]`` when they cannot be read)."""
        if not positions:
            return []
        frame = self.frames[side].iloc[positions] if self.frames is not None else self.read(
            artifact, rows=positions)
        if frame is None:
            return []
        records = frame.to_dict("records")  # keeps each column's own type
        return [{str(k): cell(v) for k, v in row.items()} for row in records]

    def key(self, cols_a: list[tuple[str, str]], cols_b: list[tuple[str, str]]
            ) -> tuple[str, numpy.ndarray, numpy.ndarray] | None:
        """``(column, keys of a, keys of b)``: the declared key, else an obvious one."""
        types_b = dict(cols_b)
        declared = [k for k in (self.a.summary.get("key"), self.b.summary.get("key"))
                    if isinstance(k, str)]
        candidates = [name for name, dtype in cols_a if name in types_b
                      and _could_be_key(name, dtype, types_b[name], self.a, self.b)]
        import pandas

        for name in dict.fromkeys([*declared, *candidates]):
            if name not in types_b or name not in dict(cols_a):
                continue
            left, right = self.column(self.a, 0, name), self.column(self.b, 1, name)
            if left is None or right is None:
                continue
            keys = pandas.Index(left), pandas.Index(right)  # unique: fast when sorted
            if all(k.is_unique and not k.hasnans for k in keys):
                return name, left.to_numpy(), right.to_numpy()
        return None

    def column(self, artifact: Artifact, side: int, name: str) -> pandas.Series | None:
        if self.frames is not None:
            column = self.frames[side][name]
        else:
            frame = self.read(artifact, columns=[name])
            column = None if frame is None else frame[name]
        import pandas

        return column if isinstance(column, pandas.Series) else None

    def read(self, artifact: Artifact, *, rows: Sequence[int] | None = None,
             columns: Sequence[str] | None = None) -> pandas.DataFrame | None:
        """Rows and columns of a stored table (``None``: it is not one, or is a pickle).

        Raises:
            IntegrityError: the content read does not match its digest.
        """
        return load_frame(self.backend, self.txn, artifact, rows=rows, columns=columns)


def load_frame(backend: Backend, txn: ReadTxn, artifact: Artifact, *,
               rows: Sequence[int] | None = None,
               columns: Sequence[str] | None = None) -> pandas.DataFrame | None:
    """Rows and columns of a stored table: a stored DataFrame or a table file (``None``:
    ``artifact`` is not one, is a pickle, or pandas is missing). Nothing is unpickled.

    Raises:
        IntegrityError: the content read does not match its digest.
    """
    fmt = "parquet" if artifact.format == "pandas-parquet" else artifact.format
    if artifact.blob is None or fmt not in TABLE_FORMATS:
        return None
    try:
        return read_table(BlobFile(backend, txn, artifact.blob), fmt, rows=rows,
                          columns=columns)
    except (UnsupportedValue, ImportError):
        return None


def _could_be_key(name: str, dtype_a: str, dtype_b: str, a: Artifact, b: Artifact) -> bool:
    """Whether a column looks like an identifier on both sides (checked unique later)."""
    if not _KEY_NAME.fullmatch(name) or dtype_a != dtype_b:
        return False
    if not (dtype_a.startswith(("int", "uint", "Int", "UInt")) or dtype_a in ("object", "str",
                                                                              "string")):
        return False
    for side in (a.summary, b.summary):
        if (side.get("missing") or {}).get(name):
            return False
        stats = (side.get("stats") or {}).get(name) or {}
        if "unique" in stats and stats["unique"] != side.get("rows"):
            return False
    return True


def _row_change(key: str, before: dict[str, Any], after: dict[str, Any]) -> RowChange:
    changes = tuple(ValueChange(name, before[name], after[name]) for name in before
                    if name in after and name != key
                    and not _same_cell(before[name], after[name]))
    return RowChange(before.get(key), changes)


def _same_cell(left: Any, right: Any) -> bool:
    return left is None and right is None or same_value(left, right)


def _fingerprints(backend: Backend, txn: ReadTxn, artifact: Artifact) -> numpy.ndarray | None:
    import numpy

    digest = artifact.summary.get("row_fingerprints")
    if not isinstance(digest, bytes) or len(digest) != 16:
        return None
    if schema.manifest(txn, Digest(digest)) is None:
        return None
    data = read_blob(backend, txn, Digest(digest))
    if len(data) % 8:
        return None
    return numpy.frombuffer(data, dtype="<u8")


def row_changes(old: numpy.ndarray, new: numpy.ndarray
                ) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Positions of the rows removed from ``old`` and added in ``new``, ascending.

    Rows are a multiset of fingerprints: one present twice in ``old`` and once in ``new``
    is one row removed (the later occurrence). A row equal at the same position on both
    sides cancels out first, so an in-place edit or an append sorts only the rows that
    differ, not all of them.
    """
    import numpy

    shared = min(len(old), len(new))
    differs = numpy.flatnonzero(old[:shared] != new[:shared])
    at_old = numpy.concatenate((differs, numpy.arange(shared, len(old))))
    at_new = numpy.concatenate((differs, numpy.arange(shared, len(new))))
    return _excess(old[at_old], at_old, new[at_new]), _excess(new[at_new], at_new, old[at_old])


def _excess(values: numpy.ndarray, positions: numpy.ndarray, other: numpy.ndarray
            ) -> numpy.ndarray:
    """Positions of the items of ``values`` that ``other`` does not match, as a multiset."""
    import numpy

    if not len(values):
        return positions
    order = numpy.argsort(values, kind="stable")
    ordered = values[order]
    unique, first, counts = numpy.unique(ordered, return_index=True, return_counts=True)
    other_unique, other_counts = numpy.unique(other, return_counts=True)
    if len(other_unique):
        at = numpy.minimum(numpy.searchsorted(other_unique, unique), len(other_unique) - 1)
        present = numpy.where(other_unique[at] == unique, other_counts[at], 0)
    else:
        present = numpy.zeros_like(counts)
    rank = numpy.arange(len(ordered)) - numpy.repeat(first, counts)
    keep = rank >= numpy.repeat(present, counts)  # the first `present` of each are matched
    return numpy.sort(positions[order][keep])


def _shared_fingerprints(left: pandas.DataFrame, right: pandas.DataFrame
                         ) -> tuple[tuple[str, ...], numpy.ndarray, numpy.ndarray]:
    from pandas.util import hash_pandas_object

    by_name_l = {str(c): c for c in left.columns}
    by_name_r = {str(c): c for c in right.columns}
    columns_l, columns_r, compared = {}, {}, []
    for name in sorted(set(by_name_l) & set(by_name_r)):
        pair = _comparable(left[by_name_l[name]], right[by_name_r[name]])
        if pair is not None:
            columns_l[name], columns_r[name] = pair
            compared.append(name)
    if not compared:
        return (), left.index.to_numpy()[:0], right.index.to_numpy()[:0]
    import pandas

    frame_l = pandas.DataFrame(columns_l).reset_index(drop=True)
    frame_r = pandas.DataFrame(columns_r).reset_index(drop=True)
    return (tuple(compared), hash_pandas_object(frame_l, index=False).to_numpy(),
            hash_pandas_object(frame_r, index=False).to_numpy())


def _comparable(left: pandas.Series, right: pandas.Series
                ) -> tuple[pandas.Series, pandas.Series] | None:
    """Both columns in one type, cast losslessly (checked by round trip), else ``None``."""
    if left.dtype == right.dtype:
        return left, right
    for source, target, flip in sorted(
        [(left, right, False), (right, left, True)], key=lambda t: (str(t[0].dtype), t[2])
    ):
        try:
            cast = source.astype(str if target.dtype == object else target.dtype)
            if not cast.astype(source.dtype).equals(source):
                continue
        except (TypeError, ValueError, OverflowError):
            continue
        return (target, cast) if flip else (cast, target)
    return None


def cell(value: Any) -> Any:
    """A table cell as a JSON-safe value (missing values as ``None``)."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        try:
            value = value.item()
        except (ValueError, TypeError):
            pass
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    try:
        import pandas

        if value is pandas.NA or value is pandas.NaT:
            return None
    except ImportError:
        pass
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)
