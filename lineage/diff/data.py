"""Comparing two versions of a dataset: rows added and removed, schema, class balance.

Rows are compared as multisets of 64-bit row fingerprints
(``pandas.util.hash_pandas_object(df, index=False)``). When both versions have the same
columns, the fingerprints recorded at log time (``summary["row_fingerprints"]``) are used
and nothing is loaded, except the few example rows. When the columns differ, the datasets
are loaded (if they are loadable) and re-fingerprinted on the columns they share; a retyped
column is kept only if one side casts losslessly to the other's type.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Any

from lineage.core.hashing import Digest
from lineage.core.records import Artifact
from lineage.diff.model import ClassShift, ColumnChange, DatasetDiff, ValueChange
from lineage.errors import UnsupportedValue
from lineage.storage import schema
from lineage.storage.base import Backend, ReadTxn
from lineage.storage.blobs import read_blob

if TYPE_CHECKING:
    import numpy
    import pandas


__all__ = ["cell", "dataset_diff", "is_dataset", "load_frame"]

_TABLE_FILES = ("csv", "tsv", "parquet")


def is_dataset(artifact: Artifact) -> bool:
    """Whether ``artifact`` carries a tabular dataset summary."""
    return artifact.kind == "dataset" or "columns" in artifact.summary


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
    rows = _rows(backend, txn, a, b, cols_a, cols_b, examples)
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


def _rows(backend: Backend, txn: ReadTxn, a: Artifact, b: Artifact, cols_a: list[tuple[str, str]],
          cols_b: list[tuple[str, str]], examples: int) -> dict[str, Any]:
    frames: tuple[pandas.DataFrame | None, pandas.DataFrame | None] | None = None
    compared_on: tuple[str, ...] | None = None
    old = new = None
    if cols_a == cols_b:
        old, new = _fingerprints(backend, txn, a), _fingerprints(backend, txn, b)
    if old is None or new is None:
        frames = (load_frame(backend, txn, a), load_frame(backend, txn, b))
        if frames[0] is None or frames[1] is None:
            why = ("no row fingerprints were recorded" if cols_a == cols_b
                   else "the columns differ")
            return {"rows_note": f"rows not compared: {why} and the datasets cannot be loaded"}
        compared_on, old, new = _shared_fingerprints(frames[0], frames[1])
        if not compared_on:
            return {"rows_note": "rows not compared: the versions share no comparable column"}
    removed, added, at_removed, at_added = multiset_changes(old, new, examples)
    out: dict[str, Any] = {"rows_added": added, "rows_removed": removed,
                           "rows_compared_on": compared_on}
    if examples and (at_removed or at_added):
        if frames is None:
            frames = (load_frame(backend, txn, a) if at_removed else None,
                      load_frame(backend, txn, b) if at_added else None)
        out["examples_removed"] = example_rows(frames[0], at_removed)
        out["examples_added"] = example_rows(frames[1], at_added)
    return out


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


def multiset_changes(old: numpy.ndarray, new: numpy.ndarray, limit: int
                     ) -> tuple[int, int, list[int], list[int]]:
    """``(removed, added, first positions removed in old, first positions added in new)``.

    Rows are a multiset: a fingerprint present twice in ``old`` and once in ``new`` counts
    one row removed.
    """
    import numpy

    # A row equal at the same position on both sides cancels out of the difference, so only
    # the others are counted (in-place edits and appends sort ~1 % of the rows, not all);
    # example positions are still looked up in the whole arrays.
    shared = min(len(old), len(new))
    differs = old[:shared] != new[:shared]
    rest_old = numpy.concatenate((old[:shared][differs], old[shared:]))
    rest_new = numpy.concatenate((new[:shared][differs], new[shared:]))
    values_old, counts_old = numpy.unique(rest_old, return_counts=True)
    values_new, counts_new = numpy.unique(rest_new, return_counts=True)

    def excess(values: numpy.ndarray, counts: numpy.ndarray, other_values: numpy.ndarray,
               other_counts: numpy.ndarray, rows: numpy.ndarray) -> tuple[int, list[int]]:
        if len(other_values):
            at = numpy.minimum(numpy.searchsorted(other_values, values), len(other_values) - 1)
            present = numpy.where(other_values[at] == values, other_counts[at], 0)
        else:
            present = numpy.zeros_like(counts)
        extra = numpy.maximum(counts - present, 0)
        total = int(extra.sum())
        if not total or not limit:
            return total, []
        gone = values[extra > 0]
        at = numpy.minimum(numpy.searchsorted(gone, rows), len(gone) - 1)
        positions = numpy.flatnonzero(gone[at] == rows)[:limit]
        return total, [int(p) for p in positions]

    removed, at_removed = excess(values_old, counts_old, values_new, counts_new, old)
    added, at_added = excess(values_new, counts_new, values_old, counts_old, new)
    return removed, added, at_removed, at_added


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


# -- loading and example rows ----------------------------------------------------------------


def load_frame(backend: Backend, txn: ReadTxn, artifact: Artifact) -> pandas.DataFrame | None:
    """The dataset as a DataFrame, or ``None`` when it cannot be loaded without trust.

    Pickled content is never loaded; CSV, TSV and Parquet files and Parquet-stored
    DataFrames are. Corrupt content raises :class:`~lineage.errors.IntegrityError`.
    """
    fmt = artifact.format
    if artifact.blob is None or (fmt != "pandas-parquet" and fmt not in _TABLE_FILES):
        return None
    try:
        import pandas
    except ImportError:
        return None
    data = read_blob(backend, txn, artifact.blob)
    try:
        if fmt == "pandas-parquet":
            from lineage.adapters import adapter_for_format

            frame = adapter_for_format(fmt).load(data, fmt, trust=False)
        else:
            frame = _read_table(data, fmt)
    except (UnsupportedValue, ValueError, OSError, ImportError):
        return None
    if isinstance(frame, pandas.Series):
        frame = frame.to_frame()
    return frame if isinstance(frame, pandas.DataFrame) else None


def _read_table(data: bytes, fmt: str) -> pandas.DataFrame:
    """A table file's bytes as a DataFrame (floats parsed exactly)."""
    import pandas

    if fmt == "parquet":
        return pandas.read_parquet(io.BytesIO(data))
    exact: dict[str, Any] = {} if int(pandas.__version__.split(".")[0]) >= 3 else {
        "float_precision": "round_trip"}  # pandas 3 parses floats exactly by default
    return pandas.read_csv(io.BytesIO(data), sep="\t" if fmt == "tsv" else ",", **exact)


def example_rows(frame: pandas.DataFrame | None, positions: list[int]
                 ) -> tuple[dict[str, Any], ...]:
    """Rows at ``positions`` as JSON-safe dicts (``()`` without a frame)."""
    if frame is None or not positions:
        return ()
    records = frame.iloc[positions].to_dict("records")  # keeps each column's own type
    return tuple({str(k): cell(v) for k, v in row.items()} for row in records)


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
