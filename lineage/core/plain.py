"""Plain values: the one JSON-safe converter, number tests, equality rules, and times.

Every ``to_dict()`` and every ``--json`` goes through :func:`jsonable`, so a digest, a
non-finite float or a tuple looks the same in every JSON lineage writes.
"""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any

from lineage.core import encoding

__all__ = ["identical", "is_number", "iso_time", "jsonable", "parse_time", "same_value"]


def jsonable(value: Any) -> Any:
    """``value`` as JSON-safe data.

    Digests and other bytes become lowercase hex; non-finite floats the strings ``"nan"``,
    ``"inf"`` and ``"-inf"`` (JSON has no such numbers); tuples lists; map keys strings.
    Objects with a ``to_dict()`` method are converted through it.
    """
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if value != value else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(jsonable(k)): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [jsonable(v) for v in items]
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict) and not isinstance(value, type):
        return jsonable(to_dict())
    return value


def is_number(value: Any) -> bool:
    """Whether ``value`` is an int or a float (``bool`` is not a number here)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def same_value(left: Any, right: Any) -> bool:
    """Equality as a query asks it: numbers by value (``1 == 1.0``), anything else by its
    canonical encoding; a value that cannot be encoded equals nothing."""
    if is_number(left) and is_number(right):
        return bool(left == right)
    return identical(left, right)


def identical(left: Any, right: Any) -> bool:
    """Equality as identity sees it: the same canonical encoding (``1`` and ``1.0``
    differ, as they do in a call key). Values that cannot be encoded compare with ``==``."""
    try:
        return encoding.encode(left) == encoding.encode(right)
    except Exception:  # noqa: BLE001 - unencodable values fall back to their own equality
        try:
            return bool(left == right)
        except Exception:  # noqa: BLE001 - e.g. arrays whose == is elementwise
            return False


def iso_time(timestamp: float) -> str:
    """A POSIX time as ISO 8601 UTC, to the second (``2026-12-05T05:54:46+00:00``)."""
    return _dt.datetime.fromtimestamp(timestamp, _dt.UTC).isoformat(timespec="seconds")


def parse_time(value: Any, what: str = "time") -> float:
    """A moment as epoch seconds: from epoch seconds, a ``datetime``, or ISO 8601 text
    (``2026-12-05``, ``2026-12-05T10:30``, ``...+01:00`` or ``...Z``). Times without an
    offset are local time.

    Raises:
        InvalidQuery: ``value`` is none of these (the message says what was given).
    """
    from lineage.errors import InvalidQuery

    if is_number(value) and math.isfinite(value):
        return float(value)
    if isinstance(value, str):
        try:
            value = _dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidQuery(f"{what} {value!r} is not a date or time; use ISO 8601 such as "
                               "2026-12-05 or 2026-12-05T14:30:00+00:00") from None
    if isinstance(value, _dt.datetime):
        return value.timestamp()
    if isinstance(value, _dt.date):
        return _dt.datetime(value.year, value.month, value.day).timestamp()
    raise InvalidQuery(f"{what} must be a datetime, ISO 8601 text or epoch seconds, "
                       f"got {value!r}")
