"""Plain values: the one JSON-safe converter, number tests and text, equality rules,
times, and the order metrics are listed in.

Every ``to_dict()`` and every ``--json`` goes through :func:`jsonable`, so a digest, a
non-finite float or a tuple looks the same in every JSON lineage writes.
"""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any, Final

from lineage.core import encoding

__all__ = ["CLINICAL_METRICS", "identical", "is_number", "iso_time", "jsonable",
           "metric_order", "number_text", "parse_time", "same_value", "value_text"]

#: Metrics a clinical reviewer reads first, in this order; any others follow by name.
CLINICAL_METRICS: Final = ("sensitivity", "specificity", "ppv", "npv", "roc_auc", "f1",
                           "accuracy")


def metric_order(name: str) -> tuple[int, str]:
    """A sort key listing :data:`CLINICAL_METRICS` first, then the rest by name."""
    if name in CLINICAL_METRICS:
        return (CLINICAL_METRICS.index(name), name)
    return (len(CLINICAL_METRICS), name)


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


def number_text(value: Any, digits: int | None = None, *, grouped: bool = False) -> str:
    """A number as people read it, its type visible: a float always looks like a float.

    ``digits`` rounds floats to that many significant digits (``None``: the shortest text
    that reads back as the same float, as ``repr``); a float that prints like an integer
    keeps ``.0`` (``1.0``, never ``1``), so ``1`` and ``1.0`` never look alike. Ints are
    exact, with thousands separators when ``grouped``. Non-numbers go through ``str``.

    Example:
        >>> number_text(1.0), number_text(0.978494, 4), number_text(12000, grouped=True)
        ('1.0', '0.9785', '12,000')
    """
    if isinstance(value, bool) or not is_number(value):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}" if grouped else str(value)
    if not math.isfinite(value):
        return "nan" if value != value else ("inf" if value > 0 else "-inf")
    text = repr(value) if digits is None else f"{value:.{digits}g}"
    if text.lstrip("-").isdigit():
        text += ".0"
    return text


def value_text(value: Any, limit: int = 80) -> str:
    """A param, hyperparameter or config value on one line: numbers by
    :func:`number_text` (exact), text quoted, anything else by ``repr``; cut at ``limit``."""
    text = number_text(value) if is_number(value) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
