"""pandas DataFrames and Series, and tabular files (CSV, TSV, Parquet, JSON lines).

A frame is stored as Parquet (format ``"pandas-parquet"``) when Parquet gives it back
exactly: the adapter reads what it wrote and compares identity, dtypes, index and column
names and ``attrs``. A frame Parquet cannot hold exactly (mixed-type object columns,
mixed-type column names, subclasses) is stored as a pickle (``"pandas-pickle"``) with a
warning, and loading it needs ``trust=True``.

**Identity** is independent of the storage format: the canonical encoding of the column
names and dtypes, the row count, the XXH3-128 of the row fingerprints, and the index when it
is not the default ``RangeIndex(0..n)``. A frame and the same data written to Parquet (or,
for plain dtypes, to CSV) and read back have the same identity. Row fingerprints are
``pandas.util.hash_pandas_object(frame, index=False)``: one uint64 per row, stored little-
endian in row order as the ``row_fingerprints`` attachment, so a diff can say which rows
were added or removed. A Series is identified as a Series (not as a one-column frame) and
summarized as its one-column frame.

**Summary** (shared with :func:`summarize_table_file`)::

    {"rows": int, "columns": [[name, dtype], ...], "missing": {col: int},
     "stats": {col: {"mean", "std", "min", "max"} or {"unique", "top"}},
     "target": str | None, "class_distribution": {str(label): int},  # the latter with target
     "key": str}  # only when a key column was declared (``key=``)

Numeric statistics skip missing values; ``mean`` and ``std`` keep 12 significant digits.
Boolean and complex columns count as non-numeric. A declared key column must exist, have
no missing value and no repeated value; a diff then matches rows by it (an edited row is
*modified*, not removed and added).

Frames are written to Parquet in row groups of
:data:`~lineage.adapters.tables.ROW_GROUP_ROWS` rows, so that a diff reads only the groups
holding the rows it shows (a frame of up to that many rows is one group, as before).
"""

from __future__ import annotations

import io
import math
import pickle
import warnings
from os import PathLike
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from lineage.adapters import Dumped
from lineage.adapters.tables import ROW_GROUP_ROWS, read_table, table_format
from lineage.core import encoding
from lineage.core.hashing import digest_bytes
from lineage.errors import UnsupportedValue, UntrustedContentError

__all__ = ["PandasAdapter", "frame_identity", "frame_summary", "read_table_file",
           "summarize_table_file"]

_META_KEY: Final = b"lineage"


# -- identity ----------------------------------------------------------------------------


def _name_token(name: Any) -> Any:
    """A column or index name in a form that encodes canonically and keeps its type."""
    if type(name) is str or type(name) is int:
        return name
    if isinstance(name, tuple):
        return ["tuple", [_name_token(part) for part in name]]
    if isinstance(name, np.integer):
        return int(name)
    return [f"{type(name).__module__}.{type(name).__qualname__}", repr(name)]


def _as_frame(value: pd.DataFrame | pd.Series) -> pd.DataFrame:
    return value.to_frame() if isinstance(value, pd.Series) else value


def _is_default_index(index: pd.Index) -> bool:
    return (
        isinstance(index, pd.RangeIndex)
        and index.start == 0
        and index.step == 1
        and index.name is None
    )


def row_fingerprints(frame: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.uint64]]:
    """One uint64 per row (``hash_pandas_object(frame, index=False)``), in row order.

    Raises:
        UnsupportedValue: a column holds values pandas cannot hash.
    """
    try:
        hashes = pd.util.hash_pandas_object(frame, index=False)
    except TypeError as exc:
        raise UnsupportedValue(f"cannot fingerprint the rows of this frame: {exc}") from None
    fingerprints: np.ndarray[Any, np.dtype[np.uint64]] = hashes.to_numpy(dtype=np.uint64)
    return fingerprints


def _index_part(index: pd.Index) -> list[Any]:
    dtypes = index.dtypes if isinstance(index, pd.MultiIndex) else [index.dtype]
    hashes = pd.util.hash_pandas_object(index).to_numpy(dtype=np.uint64)
    return [
        "index",
        [_name_token(name) for name in index.names],
        [str(dtype) for dtype in dtypes],
        digest_bytes(hashes.astype("<u8", copy=False).tobytes()),
    ]


def frame_identity(
    value: pd.DataFrame | pd.Series,
    rows: np.ndarray[Any, np.dtype[np.uint64]] | None = None,
) -> bytes:
    """Bytes identifying a frame or series independently of how it is stored.

    ``rows`` may pass precomputed :func:`row_fingerprints` of ``_as_frame(value)``.
    """
    frame = _as_frame(value)
    if rows is None:
        rows = row_fingerprints(frame)
    if isinstance(value, pd.Series):
        head: list[Any] = ["pandas.Series", _name_token(value.name), str(value.dtype)]
    else:
        pairs = zip(frame.columns, frame.dtypes, strict=True)
        head = ["pandas.DataFrame", [[_name_token(n), str(t)] for n, t in pairs]]
    parts = [*head, len(frame), digest_bytes(rows.astype("<u8", copy=False).tobytes())]
    if not _is_default_index(frame.index):
        parts.append(_index_part(frame.index))
    return encoding.encode(parts)


# -- summary -----------------------------------------------------------------------------


def _scalar(value: Any) -> Any:
    """A statistic or label as a plain value: numbers stay numbers, NA becomes None."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            return str(value)
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if type(value) in (int, bool, str):
        return value
    return str(value)


def _rounded(value: Any) -> float | None:
    plain = _scalar(value)
    if plain is None:
        return None
    return float(f"{float(plain):.12g}")


def _is_numeric(dtype: Any) -> bool:
    api = pd.api.types
    return bool(
        api.is_numeric_dtype(dtype) and not api.is_bool_dtype(dtype)
        and not api.is_complex_dtype(dtype)
    )


def _column_stats(column: pd.Series) -> dict[str, Any]:
    if _is_numeric(column.dtype):
        with np.errstate(over="ignore", invalid="ignore"):  # huge values: inf, not a warning
            return {
                "mean": _rounded(column.mean()),
                "std": _rounded(column.std()),
                "min": _scalar(column.min()),
                "max": _scalar(column.max()),
            }
    try:
        counts = column.value_counts(dropna=True)
    except TypeError:  # unhashable cells (lists, dicts): count their text
        counts = column.astype(str).where(column.notna()).value_counts(dropna=True)
    return {"unique": len(counts), "top": _scalar(counts.index[0]) if len(counts) else None}


def _column_keys(frame: pd.DataFrame) -> list[str]:
    """``str`` of each column name, made unique (``name#2``...) if names repeat."""
    keys: list[str] = []
    seen: set[str] = set()
    for position, name in enumerate(frame.columns):
        key = str(name)
        if key in seen:
            key = f"{key}#{position}"
        seen.add(key)
        keys.append(key)
    return keys


def _class_distribution(frame: pd.DataFrame, target: str) -> dict[str, int]:
    if target not in frame.columns:
        available = ", ".join(map(repr, map(str, frame.columns[:50])))
        raise UnsupportedValue(
            f"target column {target!r} is not in this dataset; its columns are: {available}"
        )
    labels = frame[target]
    if isinstance(labels, pd.DataFrame):
        raise UnsupportedValue(f"target column {target!r} appears more than once; rename one")
    counts = labels.value_counts(dropna=False, sort=False)
    return {str(_scalar(label)): int(count) for label, count in counts.items()}


def _check_key(frame: pd.DataFrame, key: str) -> None:
    """Refuse a declared key column that is missing, repeated, or has missing or repeated
    values (the message says which)."""
    if key not in frame.columns:
        available = ", ".join(map(repr, map(str, frame.columns[:50])))
        raise UnsupportedValue(f"key column {key!r} is not in this dataset; its columns are: "
                               f"{available}")
    column = frame[key]
    if isinstance(column, pd.DataFrame):
        raise UnsupportedValue(f"key column {key!r} appears more than once; rename one")
    missing = int(column.isna().sum())
    if missing:
        raise UnsupportedValue(f"key column {key!r} has {missing} missing value(s); a key "
                               "identifies every row")
    repeated = column[column.duplicated()]
    if len(repeated):
        shown = ", ".join(repr(_scalar(v)) for v in repeated.unique()[:3])
        raise UnsupportedValue(f"key column {key!r} repeats values ({shown}"
                               f"{', ...' if repeated.nunique() > 3 else ''}); a key "
                               "identifies one row")


def frame_summary(frame: pd.DataFrame, *, target: str | None = None,
                  key: str | None = None) -> dict[str, Any]:
    """The dataset summary of ``frame`` (see module doc); no fingerprints or identity.

    Raises:
        UnsupportedValue: ``target`` or ``key`` is not a column of ``frame``, or ``key``
            has missing or repeated values.
    """
    keys = _column_keys(frame)
    columns = [column for _name, column in frame.items()]
    summary: dict[str, Any] = {
        "rows": len(frame),
        "columns": [[key, str(col.dtype)] for key, col in zip(keys, columns, strict=True)],
        "missing": {key: int(col.isna().sum()) for key, col in zip(keys, columns, strict=True)},
        "stats": {key: _column_stats(col) for key, col in zip(keys, columns, strict=True)},
        "target": target,
    }
    if target is not None:
        summary["class_distribution"] = _class_distribution(frame, target)
    if key is not None:
        _check_key(frame, key)
        summary["key"] = key
    return summary


def _profile(
    value: pd.DataFrame | pd.Series, target: str | None, key: str | None = None
) -> tuple[dict[str, Any], bytes, dict[str, bytes]]:
    """Summary, identity bytes and attachments of a frame or series."""
    frame = _as_frame(value)
    summary = frame_summary(frame, target=target, key=key)
    rows = row_fingerprints(frame)
    identity = frame_identity(value, rows)
    return summary, identity, {"row_fingerprints": rows.astype("<u8", copy=False).tobytes()}


def summarize_table_file(
    path: str | PathLike[str], *, target: str | None = None, key: str | None = None
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Summary (with ``"identity"`` as a Digest) and attachments of a table file
    (:data:`~lineage.adapters.tables.TABLE_FORMATS`).

    The file is read with pandas (CSV floats parsed exactly), so its identity equals that
    of the DataFrame it holds.

    Raises:
        UnsupportedValue: the file cannot be read as a table, ``target`` or ``key`` is not
            a column, or ``key`` has missing or repeated values.
    """
    frame = read_table_file(path)
    summary, identity, attachments = _profile(frame, target, key)
    summary["identity"] = digest_bytes(identity)
    return summary, attachments


def read_table_file(path: str | PathLike[str]) -> pd.DataFrame:
    """A table file (CSV, TSV, Parquet, JSON lines) as a DataFrame (CSV floats exact).

    Raises:
        UnsupportedValue: the file cannot be read as a table.
    """
    path = Path(path)
    fmt = table_format(path)
    if fmt is None:
        raise UnsupportedValue(f"{path} is not a table file (.csv, .tsv, .parquet, .jsonl, "
                               ".ndjson)")
    try:
        return read_table(path, fmt)
    except UnsupportedValue as exc:
        raise UnsupportedValue(
            f"{path}: {exc}; fix the file, or add it without kind='dataset' to store it as "
            "a plain file"
        ) from None


# -- storage -----------------------------------------------------------------------------


def _to_parquet(value: pd.DataFrame | pd.Series) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = _as_frame(value)
    table = pa.Table.from_pandas(frame, preserve_index=None)
    ours: dict[str, Any] = {"type": "frame"}
    if isinstance(value, pd.Series):
        ours = {"type": "series", "unnamed": value.name is None}
    metadata = {**(table.schema.metadata or {}), _META_KEY: encoding.encode(ours)}
    if frame.attrs:
        import json

        metadata[b"PANDAS_ATTRS"] = json.dumps(frame.attrs).encode()
    buffer = io.BytesIO()
    pq.write_table(table.replace_schema_metadata(metadata), buffer,
                   row_group_size=ROW_GROUP_ROWS)
    return buffer.getvalue()


def _from_parquet(data: bytes | memoryview) -> pd.DataFrame | pd.Series:
    import pyarrow.parquet as pq

    raw = io.BytesIO(data)
    metadata = pq.read_schema(raw).metadata or {}
    raw.seek(0)
    frame = pd.read_parquet(raw)
    ours = encoding.decode(metadata[_META_KEY]) if _META_KEY in metadata else {"type": "frame"}
    if ours.get("type") != "series":
        return frame
    series = frame.iloc[:, 0]
    if ours.get("unnamed"):
        series.name = None
    series.attrs = dict(frame.attrs)
    return series


def _same(value: pd.DataFrame | pd.Series, back: Any, identity: bytes) -> bool:
    """Whether ``back`` (read from Parquet) is exactly ``value``."""
    if type(back) is not type(value):
        return False
    if isinstance(value, pd.Series):
        same_dtypes = value.dtype == back.dtype
    else:
        same_dtypes = list(value.dtypes) == list(back.dtypes)
        same_dtypes = same_dtypes and list(value.columns.names) == list(back.columns.names)
    return bool(
        same_dtypes
        and list(value.index.names) == list(back.index.names)
        and value.attrs == back.attrs
        and frame_identity(back) == identity
    )


_EXACT_DTYPES: Final = frozenset("b1 i1 i2 i4 i8 u1 u2 u4 u8 f4 f8".split())


def _known_exact(value: pd.DataFrame | pd.Series) -> bool:
    """Whether Parquet is known to hold ``value`` exactly, so reading it back can be skipped:
    a plain frame with unique string column names, the default index, no ``attrs``, and
    only numpy bool, integer and 32/64-bit float columns."""
    if type(value) is not pd.DataFrame or value.attrs or not _is_default_index(value.index):
        return False
    names = value.columns
    if isinstance(names, pd.MultiIndex) or names.name is not None or not names.is_unique:
        return False
    return all(type(name) is str for name in names) and all(
        isinstance(dtype, np.dtype) and f"{dtype.kind}{dtype.itemsize}" in _EXACT_DTYPES
        for dtype in value.dtypes
    )


def _parquet_or_none(value: pd.DataFrame | pd.Series, identity: bytes) -> tuple[bytes | None, str]:
    """Parquet bytes that read back exactly, or ``None`` and the reason they would not.

    Unless :func:`_known_exact` vouches for the frame, the bytes are read back and compared.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pyarrow's lossy-name warning: checked below
            data = _to_parquet(value)
            if _known_exact(value):
                return data, ""
            back = _from_parquet(data)
    except (ValueError, TypeError, NotImplementedError, KeyError) as exc:  # pyarrow refuses
        return None, f"{type(exc).__name__}: {exc}"
    if not _same(value, back, identity):
        return None, "Parquet would not give it back unchanged (names, dtypes or values)"
    return data, ""


class PandasAdapter:
    """``pandas.DataFrame`` and ``pandas.Series`` as Parquet (pickle only when needed)."""

    formats = ("pandas-parquet", "pandas-pickle")

    def claims(self, value: Any) -> bool:
        """DataFrames and Series (and their subclasses)."""
        return isinstance(value, pd.DataFrame | pd.Series)

    def dump(self, value: Any, *, target: str | None = None, key: str | None = None
             ) -> Dumped:
        """Parquet (or, failing that, pickle) bytes with the dataset summary and identity;
        ``key`` declares the column that identifies rows (see the module doc).

        Raises:
            UnsupportedValue: ``target`` or ``key`` is not a column, ``key`` has missing or
                repeated values, or rows cannot be fingerprinted.
        """
        summary, identity, attachments = _profile(value, target, key)
        data, reason = _parquet_or_none(value, identity)
        if data is not None:
            return Dumped("dataset", "pandas-parquet", data, summary, identity, attachments)
        warnings.warn(
            f"this {type(value).__name__} is stored as a pickle because {reason}; loading it "
            "will need trust=True. Convert mixed-type columns or names to one type to get "
            "Parquet.",
            UserWarning,
            stacklevel=2,
        )
        pickled = pickle.dumps(value, protocol=5)
        return Dumped("dataset", "pandas-pickle", pickled, summary, identity, attachments)

    def load(self, data: bytes, format: str, *, trust: bool) -> pd.DataFrame | pd.Series:
        """The frame or series back.

        Raises:
            UntrustedContentError: the content is a pickle and ``trust`` is false.
        """
        if format == "pandas-parquet":
            return _from_parquet(data)
        if not trust:
            raise UntrustedContentError(
                "this DataFrame was stored as a pickle (Parquet could not hold it), and "
                "unpickling can run arbitrary code; if you trust whoever wrote this store, "
                "load it with trust=True"
            )
        return pickle.loads(data)  # noqa: S301 - trusted

    def key(self, value: Any) -> bytes:
        """The frame's identity (one pass of row hashing; see :func:`frame_identity`)."""
        return frame_identity(value)

