"""What a step returns, as recorded and rebuilt: outputs, their shapes, cache-hit loaders.

A step's return value becomes outputs named ``return`` (one value), ``return.<i>`` (a tuple)
or ``return.<key>`` (a dict holding non-plain values). Plain scalars are stored as a one-key
config. :func:`rebuilder` turns a recorded run back into the same return value, and
:func:`as_recorded` gives, on a miss, exactly what a later hit will return.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from lineage.core import encoding
from lineage.core.hashing import Digest
from lineage.core.records import Artifact, Run
from lineage.errors import (
    CorruptRecordError,
    LineageError,
    RecordTypeError,
    UnsupportedValue,
    UntrustedContentError,
)
from lineage.tracking import recording

if TYPE_CHECKING:
    from lineage.store.ingest import Prepared
    from lineage.store.store import Store

__all__ = ["MISSING", "as_recorded", "is_plain", "miss_reason", "numpy_scalar",
           "output_bytes", "output_items", "prepare_outputs", "rebuilder"]

#: A rebuilt output that is gone (or edited, for files): the call must run again.
MISSING: Final = object()

#: Blobs of step outputs this process stored itself: their bytes are its own serialization
#: (a pickle it made), so a cache hit loads them without ``trust``. Bounded; forgetting one
#: only means a later hit on it needs ``trust=True``.
_OWN_OUTPUTS: set[Digest] = set()
_OWN_LIMIT: Final = 1 << 16


def numpy_scalar(value: Any) -> bool:
    """Whether ``value`` is a numpy scalar (``np.float32(0.5)``), not an array."""
    return type(value).__module__ == "numpy" and getattr(value, "shape", None) == ()


def is_plain(value: Any) -> bool:
    """Whether ``value`` is JSON-like: str/int/float/bool/None, lists/tuples/str-keyed dicts."""
    kind = type(value)
    if kind in (str, int, float, bool) or value is None:
        return True
    if kind in (list, tuple):
        return all(is_plain(v) for v in value)
    if kind is dict:
        return all(type(k) is str and is_plain(v) for k, v in value.items())
    return False


def as_recorded(result: Any) -> Any:
    """``result`` as a cache hit rebuilds it: numpy scalars as Python numbers, plain
    containers through the canonical encoding (inner tuples become lists)."""
    def recorded(value: Any) -> Any:
        if numpy_scalar(value):
            return value.item()
        if isinstance(value, list | tuple | dict) and is_plain(value):
            return encoding.decode(encoding.encode(value))
        return value

    if type(result) is tuple:
        return tuple(recorded(v) for v in result)
    if is_output_dict(result):
        return {k: recorded(v) for k, v in result.items()}
    return recorded(result)


def is_output_dict(result: Any) -> bool:
    """A dict with str keys holding some non-plain value: one output per key."""
    return (type(result) is dict and bool(result) and all(type(k) is str for k in result)
            and not is_plain(result))


def output_items(result: Any) -> list[tuple[str, Any]]:
    """``(output name, value)`` pairs of a step's return value (see the module docstring)."""
    if result is None:
        return []
    if type(result) is tuple:
        return [(f"return.{i}", v) for i, v in enumerate(result)]
    if is_output_dict(result):
        return [(f"return.{key}", v) for key, v in result.items()]
    return [("return", result)]


def prepare_outputs(store: Store, result: Any) -> tuple[dict[str, Prepared], dict[str, str],
                                                          dict[str, Any]]:
    """Staged outputs, the paths of Path outputs, and the return shape for the run's meta.

    The shape is ``{"tuple": n}`` for a tuple return, ``{"dict": [keys]}`` for a dict of
    non-plain values (one output per key), and ``{"scalars": [output names]}`` for
    outputs stored as a one-key ``{"value": v}`` config, so a hit rebuilds exactly the
    returned value (a returned ``{"value": 3}`` stays a dict).
    """
    outputs: dict[str, Prepared] = {}
    paths: dict[str, str] = {}
    scalars: list[str] = []
    for name, value in output_items(result):
        if isinstance(value, Path):
            paths[name] = str(value.resolve())
        if numpy_scalar(value):
            value = value.item()
        if is_plain(value) and not isinstance(value, list | dict | tuple):
            value = {"value": value}  # scalars are stored as a one-key config
            scalars.append(name)
        try:
            outputs[name] = recording.prepare(store, value, path_name=False)
        except UnsupportedValue as exc:
            raise UnsupportedValue(f"step output {name!r} cannot be stored: {exc}") from None
        own = outputs[name].artifact.blob
        if own is not None:
            if len(_OWN_OUTPUTS) >= _OWN_LIMIT:
                _OWN_OUTPUTS.clear()
            _OWN_OUTPUTS.add(own)
    shape: dict[str, Any] = {"scalars": scalars} if scalars else {}
    if type(result) is tuple:
        shape["tuple"] = len(result)
    elif is_output_dict(result):
        shape["dict"] = list(result)
    return outputs, paths, shape


def _output_names(run: Run) -> list[str]:
    size = run.meta.get("tuple")
    keys = run.meta.get("dict")
    if size is not None:
        names = [f"return.{i}" for i in range(size)]
    elif keys is not None:
        names = [f"return.{key}" for key in keys]
    else:
        names = sorted(run.outputs)
    if set(names) != set(run.outputs):
        raise CorruptRecordError(f"run {run.digest} records outputs {sorted(run.outputs)} that "
                                 "do not match the shape of its return value")
    return names


def _output(store: Store, run: Run, name: str) -> Artifact:
    record = store.resolve(run.outputs[name])
    if not isinstance(record, Artifact):
        raise RecordTypeError(f"run {run.digest} names run {record.digest} as its output")
    return record


def miss_reason(store: Store, run: Run, *, trust: bool = False) -> str | None:
    """Why a cache hit on ``run`` would not be served (``None``: it would), without
    changing anything: an output gone or damaged in the store, an output file edited
    since it was recorded (a missing one would be restored, so it still hits), or an
    output that only loads with trust, which the step does not have (the call raises
    :class:`~lineage.errors.UntrustedContentError`)."""
    paths = run.meta.get("paths", {})
    try:
        for name in _output_names(run):
            artifact = _output(store, run, name)
            if name not in paths:
                data = store.read_bytes(artifact)
                try:
                    _value_loader(artifact, data, False, trust)()
                except UntrustedContentError:
                    return (f"output {name!r} is a pickle this process did not store; the "
                            "call raises UntrustedContentError unless the step has "
                            "trust=True")
                continue
            path = Path(paths[name])
            if os.path.lexists(path) and recording.identity_of_path(store, path) != artifact.blob:
                return f"output {name!r} ({path}) was edited since it was recorded"
    except LineageError as exc:
        return f"the recorded outputs cannot be read back: {exc}"
    return None


def rebuilder(store: Store, run: Run, *, trust: bool = False) -> Callable[[], Any]:
    """A function rebuilding ``run``'s return value from the store (``MISSING`` if gone).

    An output that only loads with trust (a pickle) loads when ``trust`` is true or when
    this process stored it itself; else the function raises
    :class:`~lineage.errors.UntrustedContentError`: a shared store's pickles never run
    code in a step that did not opt in.
    """
    paths = run.meta.get("paths", {})
    scalars = set(run.meta.get("scalars", ()))
    size = run.meta.get("tuple")
    keys = run.meta.get("dict")
    names = _output_names(run)
    loaders = []
    for name in names:
        artifact = _output(store, run, name)
        if name in paths:
            loaders.append(_path_loader(store, artifact, Path(paths[name])))
        else:
            data = store.read_bytes(artifact)
            loaders.append(_value_loader(artifact, data, name in scalars, trust))
    if size is None and keys is None and len(loaders) == 1:
        return loaders[0]  # one output: its loader gives the value (or MISSING)

    def rebuild() -> Any:
        values = [load() for load in loaders]
        if any(v is MISSING for v in values):
            return MISSING
        if size is not None:
            return tuple(values)
        if keys is not None:
            return dict(zip(keys, values, strict=True))
        return values[0] if values else None

    return rebuild


def output_bytes(store: Store, run: Run) -> int:
    """Total size of a run's recorded outputs."""
    return sum(_output(store, run, name).size for name in run.outputs)


def _value_loader(artifact: Artifact, data: bytes, scalar: bool,
                  trust: bool) -> Callable[[], Any]:
    from lineage.adapters import adapter_for_format

    adapter = adapter_for_format(artifact.format)
    trusted = trust or artifact.blob in _OWN_OUTPUTS

    def load() -> Any:
        value = adapter.load(data, artifact.format, trust=trusted)
        return value["value"] if scalar else value

    return load


def _path_loader(store: Store, artifact: Artifact, path: Path) -> Callable[[], Any]:
    def load() -> Any:
        try:
            current = recording.identity_of_path(store, path) if os.path.lexists(path) else None
        except LineageError:
            current = None
        if current is None:
            store.checkout(artifact, path)  # restore a missing output
        elif current != artifact.blob:
            return MISSING  # edited since it was recorded: run the step, never overwrite
        return path

    return load
