"""Adapters turn Python values into stored bytes plus a summary, and back.

An adapter is found for a value by :func:`adapter_for_value` (most recently registered
first) and for stored content by its ``format`` (:func:`adapter_for_format`). Adapters for
heavy libraries live in their own modules and are imported only when a value of their type
is seen, so ``import lineage`` never imports numpy, pandas or scikit-learn.

Users add their own with :func:`register_adapter`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Protocol

from lineage.errors import UnsupportedValue

__all__ = [
    "Adapter",
    "Dumped",
    "adapter_for_format",
    "adapter_for_value",
    "format_adapter",
    "register_adapter",
]


class Dumped:
    """A value ready to store: its artifact kind, format, bytes and summary.

    ``identity`` optionally gives bytes whose digest identifies the value independently of
    how it is serialized (a DataFrame's identity does not depend on the Parquet writer); the
    store keeps that digest as ``summary["identity"]``. ``attachments`` are side blobs too
    large for a record (a dataset's row fingerprints): each is stored as a blob and its
    digest put in ``summary`` under the same key; ``gc`` keeps them with the artifact.
    """

    __slots__ = ("attachments", "data", "format", "identity", "kind", "summary")

    def __init__(self, kind: str, format: str, data: bytes | memoryview,  # noqa: A002
                 summary: dict[str, Any] | None = None, identity: bytes | None = None,
                 attachments: dict[str, bytes] | None = None) -> None:
        self.kind = kind
        self.format = format
        self.data = data
        self.summary = {} if summary is None else summary
        self.identity = identity
        self.attachments = {} if attachments is None else attachments

    def __repr__(self) -> str:
        return (f"Dumped(kind={self.kind!r}, format={self.format!r}, {len(self.data)} bytes, "
                f"summary={self.summary!r})")


class Adapter(Protocol):
    """Serializes one family of values."""

    #: formats this adapter can load
    formats: tuple[str, ...]

    def claims(self, value: Any) -> bool:
        """Whether this adapter handles ``value``."""
        ...

    def dump(self, value: Any, *, target: str | None = None) -> Dumped:
        """Serialize ``value``; ``target`` names a dataset's label column, if any."""
        ...

    def load(self, data: bytes, format: str, *, trust: bool) -> Any:
        """Rebuild a value from bytes made by :meth:`dump`."""
        ...

    def key(self, value: Any) -> bytes:
        """Cheap bytes identifying ``value`` for memoization (hashed by the caller)."""
        ...


class _Lazy:
    """An adapter imported on first need: by the module its values' types come from."""

    __slots__ = ("formats", "loaded", "modules", "target")

    def __init__(self, modules: tuple[str, ...], formats: tuple[str, ...], target: str) -> None:
        self.modules = modules
        self.formats = formats
        self.target = target
        self.loaded: Adapter | None = None

    def get(self) -> Adapter:
        if self.loaded is None:
            module_name, _, attr = self.target.partition(":")
            self.loaded = getattr(importlib.import_module(module_name), attr)()
        return self.loaded

    def may_claim(self, value: Any) -> bool:
        module = type(value).__module__ or ""
        if any(module == m or module.startswith(m + ".") for m in self.modules):
            return True
        return any(
            (getattr(base, "__module__", "") or "").split(".")[0] in self.modules
            for base in type(value).__mro__[1:]
        )


_registered: list[Adapter] = []  # by users, newest first
_builtins: list[Adapter | _Lazy] = []


def register_adapter(adapter: Adapter) -> Adapter:
    """Register ``adapter``; it is tried before the built-in adapters and every adapter
    registered earlier. Its ``formats`` decide what :meth:`Store.load` gives back."""
    _registered.insert(0, adapter)
    return adapter


def _candidates() -> list[Adapter | _Lazy]:
    if not _builtins:
        _install_builtins()
    return [*_registered, *_builtins]


def adapter_for_value(value: Any) -> Adapter:
    """The adapter for ``value``.

    Raises:
        UnsupportedValue: no adapter claims it.
    """
    for entry in _candidates():
        if isinstance(entry, _Lazy):
            if not entry.may_claim(value):
                continue
            adapter = entry.get()
        else:
            adapter = entry
        if adapter.claims(value):
            return adapter
    kind = type(value)
    raise UnsupportedValue(
        f"no adapter for a value of type {kind.__module__}.{kind.__qualname__}; store it as "
        "bytes or a file, or register one with lineage.register_adapter()"
    )


def format_adapter(format: str) -> Adapter | None:  # noqa: A002 - the record's field
    """The adapter that loads ``format``, or ``None`` (then the content is a file)."""
    for entry in _candidates():
        if format in entry.formats:
            return entry.get() if isinstance(entry, _Lazy) else entry
    return None


def adapter_for_format(format: str) -> Adapter:  # noqa: A002 - the record's field
    """The adapter that loads ``format``.

    Raises:
        UnsupportedValue: no adapter knows the format.
    """
    adapter = format_adapter(format)
    if adapter is None:
        raise UnsupportedValue(f"no adapter can load format {format!r}")
    return adapter


def _install_builtins() -> None:
    lazy: list[tuple[tuple[str, ...], tuple[str, ...], str]] = [
        (("sklearn",), ("sklearn-state", "sklearn-pickle", "skops"),
         "lineage.adapters.sklearn:SklearnAdapter"),
        (("pandas",), ("pandas-parquet", "pandas-pickle"), "lineage.adapters.pandas:PandasAdapter"),
        (("numpy",), ("numpy",), "lineage.adapters.numpy:NumpyAdapter"),
    ]
    from lineage.adapters.basic import BytesAdapter, ConfigAdapter

    _builtins.extend([ConfigAdapter(), BytesAdapter()])
    for modules, formats, target in lazy:
        _builtins.append(_Lazy(modules, formats, target))


Loader = Callable[[bytes], Any]
