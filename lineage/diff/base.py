"""The two pieces every part of a lineage diff is built from: a change that can be seen
from either side (:class:`_Reversible`) and a value that changed (:class:`ValueChange`).

See :mod:`lineage.diff.model` for the whole result; everything here is re-exported there.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

__all__ = ["ValueChange"]


class _Reversible:
    """Mixin: ``reversed()`` swaps the ``_SWAP`` field pairs, negates ``_NEGATE`` fields."""

    __slots__ = ()
    _SWAP: ClassVar[tuple[tuple[str, str], ...]] = ()
    _NEGATE: ClassVar[tuple[str, ...]] = ()
    _RENDER_ONLY: ClassVar[tuple[str, ...]] = ()  # fields left out of to_dict()

    def reversed(self) -> Any:
        """The same change seen from the other side (``b`` to ``a``)."""
        return _reverse(self)


def _reverse(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(_reverse(item) for item in value)
    if not isinstance(value, _Reversible):
        return value
    changes = {f.name: _reverse(getattr(value, f.name)) for f in fields(value)}  # type: ignore[arg-type]
    for left, right in value._SWAP:
        changes[left], changes[right] = changes[right], changes[left]
    for name in value._NEGATE:
        if changes[name] is not None:
            changes[name] = -changes[name]
    if changes.get("status") in ("added", "removed"):
        changes["status"] = "removed" if changes["status"] == "added" else "added"
    return type(value)(**changes)


@dataclass(frozen=True, slots=True)
class ValueChange(_Reversible):
    """One key whose value differs: ``status`` is ``added``, ``removed`` or ``changed``."""

    key: str
    old: Any = None
    new: Any = None
    status: str = "changed"
    _SWAP = (("old", "new"),)
