"""Table files by format (CSV, TSV, Parquet, JSON lines): read whole, or only what is shown.

A file is a table when its format (its suffix, lower case, as ``Artifact.format``) is one
of :data:`TABLE_FORMATS`, whatever kind it was added as. :func:`read_table` reads a path or
a seekable binary file (a stored blob opened as :class:`lineage.storage.blobs.BlobFile`),
whole or only some rows and columns: for Parquet only the row groups holding the rows asked
for (DataFrames are stored in row groups of :data:`ROW_GROUP_ROWS` rows, see
:mod:`lineage.adapters.pandas`), and only the columns asked for; text formats are parsed
only up to the last row asked for. CSV floats are parsed exactly (``float_precision=
"round_trip"`` on pandas 2; the default on pandas 3), so a file and the DataFrame it holds
have the same row fingerprints.

This module imports pandas and pyarrow only when a table is read.
"""

from __future__ import annotations

import bisect
import io
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

from lineage.errors import UnsupportedValue

if TYPE_CHECKING:
    import pandas

__all__ = ["PROFILE_LIMIT", "ROW_GROUP_ROWS", "TABLE_FORMATS", "read_table", "table_format"]

#: Formats (file suffixes without the dot) read as tables.
TABLE_FORMATS: Final = frozenset({"csv", "tsv", "parquet", "jsonl", "ndjson"})
#: Rows per Parquet row group when lineage writes a DataFrame: a diff that shows a few rows
#: reads one group of each version, not the whole table.
ROW_GROUP_ROWS: Final = 65_536
#: Table files not added as ``kind="dataset"`` are profiled up to this size (when added, or
#: by a diff when they were stored unprofiled); larger ones stay plain files.
PROFILE_LIMIT: Final = 512 * 1024 * 1024

Source = str | PathLike[str] | IO[bytes] | io.RawIOBase


def table_format(path: str | PathLike[str]) -> str | None:
    """The table format of a file name (``"train.CSV"`` -> ``"csv"``), or ``None``."""
    suffix = Path(path).suffix.lower().lstrip(".")
    return suffix if suffix in TABLE_FORMATS else None


def read_table(source: Source, fmt: str, *, rows: Sequence[int] | None = None,
               columns: Sequence[str] | None = None) -> pandas.DataFrame:
    """The table in ``source`` (a path or a seekable binary file) as a DataFrame.

    Args:
        fmt: one of :data:`TABLE_FORMATS`.
        rows: row positions (0-based, in file order) to read, in the order wanted; ``None``
            reads every row. Positions past the end are an error.
        columns: column names to read (``None``: all).

    Returns:
        A DataFrame of those rows (a fresh ``RangeIndex``) and columns, in the order asked.

    Raises:
        UnsupportedValue: the content cannot be read as a table of that format, a column
            asked for is missing, or a row position is out of range.
    """
    import pandas

    if fmt not in TABLE_FORMATS:
        known = ", ".join(sorted(TABLE_FORMATS))
        raise UnsupportedValue(f"{fmt!r} is not a table format ({known})")
    wanted = None if rows is None else [int(r) for r in rows]
    try:
        if fmt == "parquet":
            frame = _parquet(source, wanted, columns)
        else:
            frame = _text(source, fmt, wanted, columns)
    except (ValueError, OSError, NotImplementedError, KeyError, IndexError) as exc:
        raise UnsupportedValue(f"cannot read this {fmt} table ({type(exc).__name__}: {exc})"
                               ) from None
    if isinstance(frame, pandas.Series):
        frame = frame.to_frame()
    return frame.reset_index(drop=True) if wanted is not None else frame


def _parquet(source: Source, rows: list[int] | None, columns: Sequence[str] | None
             ) -> pandas.DataFrame:
    import pyarrow.parquet as pq

    names = list(columns) if columns is not None else None
    parquet = pq.ParquetFile(source)
    if rows is None:
        return parquet.read(columns=names, use_pandas_metadata=True).to_pandas()
    starts, total = [], 0
    for group in range(parquet.metadata.num_row_groups):
        starts.append(total)
        total += parquet.metadata.row_group(group).num_rows
    if any(r < 0 or r >= total for r in rows):
        raise IndexError(f"row position out of range (the table has {total} rows)")
    group_of = [bisect.bisect_right(starts, r) - 1 for r in rows]
    groups = sorted(set(group_of))
    if not groups:
        empty = parquet.schema_arrow.empty_table()
        return (empty.select(names) if names is not None else empty).to_pandas()
    table = parquet.read_row_groups(groups, columns=names, use_pandas_metadata=True)
    first, seen = {}, 0
    for group in groups:  # where each group's first row landed in what was read
        first[group] = seen
        seen += parquet.metadata.row_group(group).num_rows
    local = [first[g] + r - starts[g] for r, g in zip(rows, group_of, strict=True)]
    return table.take(local).to_pandas()


def _text(source: Source, fmt: str, rows: list[int] | None, columns: Sequence[str] | None
          ) -> pandas.DataFrame:
    import pandas

    needed = None if rows is None else (max(rows) + 1 if rows else 0)
    if isinstance(source, str | PathLike):
        opened: Any = source
    else:
        opened = io.BufferedReader(source) if isinstance(source, io.RawIOBase) else source
    if fmt in ("jsonl", "ndjson"):
        frame = pandas.read_json(opened, lines=True, nrows=needed)
        if columns is not None:
            frame = frame.loc[:, list(columns)]
    else:
        exact: dict[str, Any] = {} if int(pandas.__version__.split(".")[0]) >= 3 else {
            "float_precision": "round_trip"}
        frame = pandas.read_csv(opened, sep="\t" if fmt == "tsv" else ",", nrows=needed,
                                usecols=list(columns) if columns is not None else None,
                                **exact)
        if columns is not None:
            frame = frame.loc[:, list(columns)]
    if rows is None:
        return frame
    if any(r < 0 or r >= len(frame) for r in rows):
        raise IndexError(f"row position out of range (the table has {len(frame)} rows or fewer)")
    return frame.iloc[rows]
