"""numpy arrays: stored as ``.npy`` bytes (no pickle), identified by dtype, shape and values.

An array's identity is the canonical encoding of ``["numpy.ndarray", dtype, shape, xxh3]``
where ``xxh3`` is the XXH3-128 digest of its bytes in C order. Equal arrays therefore share
an identity whatever their memory layout (C order, Fortran order, a strided view), and the
stored bytes are always written in C order, so the stored blob is shared too. Values are
compared by their bytes: ``0.0`` and ``-0.0`` differ, as do NaNs with different payloads,
and so do equal values of different dtypes (``int32`` vs ``int64``, ``<f8`` vs ``>f8``).

Only plain :class:`numpy.ndarray` (and ``np.memmap``, which loads back as a plain array)
is claimed: other subclasses (masked arrays, ``np.matrix``, record arrays) would come back as
plain arrays and lose meaning, so they are refused. numpy scalars
(``np.float64(1.0)``) are not arrays: the tracking code turns them into Python numbers, and
``store.add`` refuses them with :class:`~lineage.errors.UnsupportedValue` (wrap one with
``np.asarray`` to store it as a 0-d array). Arrays of dtype ``object`` would need pickle
and are refused too.
"""

from __future__ import annotations

import io
from typing import Any, Final

import numpy as np
import xxhash

from lineage.adapters import Dumped
from lineage.core import encoding
from lineage.errors import UnsupportedValue

__all__ = ["NumpyAdapter", "array_identity"]

_TAG: Final = "numpy.ndarray"
_BLOCK: Final = 8 * 1024 * 1024  # bytes per copied block when hashing a non-contiguous array


def _check_storable(array: np.ndarray[Any, Any]) -> None:
    if array.dtype.hasobject:
        raise UnsupportedValue(
            f"a numpy array of dtype {array.dtype} holds Python objects, which lineage "
            "cannot store without pickle; convert it (e.g. array.astype(str) or a numeric "
            "dtype) or put it in a pandas DataFrame"
        )


def _c_order_digest(array: np.ndarray[Any, Any]) -> bytes:
    """XXH3-128 of the array's bytes in C order, without copying a C-contiguous array."""
    if array.flags.c_contiguous:
        return xxhash.xxh3_128_digest(array.reshape(-1).view(np.uint8).data)
    hasher = xxhash.xxh3_128()
    rows = max(1, _BLOCK // max(1, array[0].nbytes))  # ndim >= 1 here: 0-d is contiguous
    for start in range(0, array.shape[0], rows):
        block = np.ascontiguousarray(array[start : start + rows])
        hasher.update(block.reshape(-1).view(np.uint8).data)
    return hasher.digest()


def array_identity(array: np.ndarray[Any, Any]) -> bytes:
    """Bytes identifying ``array`` by dtype, shape and C-order values (see module doc).

    Raises:
        UnsupportedValue: the array holds Python objects.
    """
    _check_storable(array)
    descr = np.lib.format.dtype_to_descr(array.dtype)
    return encoding.encode([_TAG, descr, list(array.shape), _c_order_digest(array)])


def _number(value: Any) -> int | float:
    item = value.item()
    return item if isinstance(item, int) else float(item)


def array_summary(array: np.ndarray[Any, Any]) -> dict[str, Any]:
    """dtype, shape and size; for integer and float arrays also min, max, mean and counts.

    Float statistics are over the finite values (``None`` when there are none), with the
    number of NaNs under ``"nan"`` and of infinities under ``"inf"``.
    """
    summary: dict[str, Any] = {
        "dtype": str(array.dtype),
        "shape": list(array.shape),
        "size": int(array.size),
    }
    kind = array.dtype.kind
    if kind not in "iuf" or array.size == 0:
        return summary
    if kind == "f":
        nan = int(np.count_nonzero(np.isnan(array)))
        finite = array[np.isfinite(array)]
        summary["nan"] = nan
        summary["inf"] = int(array.size - finite.size - nan)
    else:
        finite = array
    if finite.size == 0:
        summary.update(min=None, max=None, mean=None)
    else:
        with np.errstate(over="ignore"):  # a mean beyond float64 is inf, not a warning
            mean = float(finite.mean(dtype=np.float64))
        summary.update(
            min=_number(finite.min()), max=_number(finite.max()), mean=float(f"{mean:.12g}")
        )
    return summary


class NumpyAdapter:
    """Plain ``numpy.ndarray`` values, stored in ``.npy`` format (C order, no pickle)."""

    formats = ("numpy",)

    def claims(self, value: Any) -> bool:
        """``numpy.ndarray`` and ``numpy.memmap`` (no other subclass, no numpy scalar)."""
        return type(value) is np.ndarray or type(value) is np.memmap

    def dump(self, value: Any, *, target: str | None = None) -> Dumped:
        """``.npy`` bytes of the array in C order, its summary and identity.

        Raises:
            UnsupportedValue: the array holds Python objects, or ``target`` is given
                (target columns belong to tabular datasets).
        """
        if target is not None:
            raise UnsupportedValue(
                f"target={target!r} names a label column, but a numpy array has no columns; "
                "pass a pandas DataFrame (or a CSV/Parquet file) to record a class distribution"
            )
        identity = array_identity(value)
        buffer = io.BytesIO()
        c_order = value if value.flags.c_contiguous else value.copy(order="C")  # keeps 0-d
        np.lib.format.write_array(buffer, c_order, allow_pickle=False)
        return Dumped("value", "numpy", buffer.getbuffer(), array_summary(value), identity)

    def load(self, data: bytes, format: str, *, trust: bool) -> np.ndarray[Any, Any]:
        """The array back (a fresh, writable, C-ordered array); never unpickles."""
        array: np.ndarray[Any, Any] = np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
        return array

    def key(self, value: Any) -> bytes:
        """The array's identity: one XXH3 pass over its bytes (see :func:`array_identity`)."""
        return array_identity(value)
