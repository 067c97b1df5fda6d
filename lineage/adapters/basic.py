"""Adapters for raw bytes and JSON-like configs (dicts and lists of plain values)."""

from __future__ import annotations

from typing import Any

from lineage.adapters import Dumped
from lineage.core import encoding
from lineage.errors import UnsupportedValue

__all__ = ["BytesAdapter", "ConfigAdapter"]


class BytesAdapter:
    """``bytes``, ``bytearray`` and ``memoryview``, stored as they are."""

    formats: tuple[str, ...] = ("bytes",)

    def claims(self, value: Any) -> bool:
        """Bytes-like values."""
        return isinstance(value, bytes | bytearray | memoryview)

    def dump(self, value: Any, *, target: str | None = None) -> Dumped:
        """Store the bytes unchanged."""
        return Dumped("value", "bytes", memoryview(value).cast("B"), {"length": len(value)})

    def load(self, data: bytes, format: str, *, trust: bool) -> bytes:
        """The bytes back."""
        return bytes(data)

    def key(self, value: Any) -> bytes:
        """The bytes themselves."""
        return bytes(value)


def _describe(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return {"type": "dict", "keys": sorted(map(str, value))[:50], "length": len(value)}
    return {"type": "list", "length": len(value)}


class ConfigAdapter:
    """Dicts and lists of str/int/float/bool/None (and nested), stored canonically."""

    formats: tuple[str, ...] = ("msgpack",)

    def claims(self, value: Any) -> bool:
        """Dicts, lists and tuples whose contents encode canonically."""
        if not isinstance(value, dict | list | tuple):
            return False
        try:
            encoding.encode(value)
        except UnsupportedValue:
            return False
        return True

    def dump(self, value: Any, *, target: str | None = None) -> Dumped:
        """Canonical msgpack; the summary holds the value itself when it is small."""
        data = encoding.encode(value)
        summary = _describe(value)
        if len(data) <= 4096:
            summary["value"] = value
        return Dumped("config", "msgpack", data, summary)

    def load(self, data: bytes, format: str, *, trust: bool) -> Any:
        """The decoded value (tuples come back as lists)."""
        return encoding.decode(data)

    def key(self, value: Any) -> bytes:
        """The canonical encoding."""
        return encoding.encode(value)
