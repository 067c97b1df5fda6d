"""The call key of a step: what makes two calls the same call.

A call's key is the XXH3-128 of the step's name, its code identity (source, or bytecode for a
function without source, or a pinned ``version``), and its arguments sorted into params
(plain values, encoded canonically) and inputs (paths, artifacts and values an adapter hashes,
each by a tagged content identity). :class:`CallPlan` holds a call's key and the parts it was
made of.
"""

from __future__ import annotations

import inspect
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import msgpack

from lineage.core import encoding
from lineage.core.hashing import Digest, digest_bytes
from lineage.core.records import Artifact
from lineage.errors import UnsupportedValue
from lineage.tracking import recording

if TYPE_CHECKING:
    from lineage.store.store import Store

__all__ = ["CallPlan", "bytecode_identity", "input_identity", "scalar_params_encoding"]


@dataclass(slots=True)
class CallPlan:
    """One call's arguments sorted into inputs and params, and its key."""

    key: Digest
    code: Digest
    params: dict[str, Any]
    inputs: dict[str, Any]  # name -> the value (Path, Artifact, or adapter value)
    identities: dict[str, Digest]  # name -> content identity used in the key


_INT64: Final = (-(2**63), 2**63 - 1)
_packers = threading.local()


def scalar_params_encoding(params: dict[str, Any]) -> bytes | None:
    """``encoding.encode([{}, params])`` for params of plain scalars, faster; else ``None``.

    Gives the same bytes as the general encoder (sorted keys, canonical floats), which
    ``tests/test_step.py`` checks.
    """
    ordered = {}
    for key in sorted(params):
        value = params[key]
        kind = type(value)
        if kind is float:
            if value != value or value == 0.0:
                return None  # NaN and -0.0 take the general path
        elif kind is int:
            if not _INT64[0] <= value <= _INT64[1]:
                return None
        elif kind is not str and kind is not bool and value is not None:
            return None
        ordered[key] = value
    packer = getattr(_packers, "packer", None)
    if packer is None:  # one per thread: a Packer is cheaper reused than built per call
        packer = _packers.packer = msgpack.Packer(use_bin_type=True)
    try:
        packed: bytes = packer.pack([{}, ordered])  # the buffer resets after an error too
        return packed
    except UnicodeEncodeError:
        return None  # the general encoder raises UnsupportedValue for it


def input_identity(store: Store, name: str, value: Any) -> Digest:
    """The content identity of an input, tagged with what it is.

    The tag keeps a ``Path`` to a file holding ``b"hello"``, the bytes ``b"hello"`` and an
    artifact apart even where their content digests agree.
    """
    if isinstance(value, Path):
        return encoding.digest_of(["path", recording.identity_of_path(store, value)])
    if isinstance(value, Artifact):
        return encoding.digest_of(["artifact", value.raw_digest])
    from lineage.adapters import adapter_for_value

    try:
        adapter = adapter_for_value(value)
    except UnsupportedValue:
        kind = type(value)
        raise UnsupportedValue(
            f"argument {name!r} is a {kind.__module__}.{kind.__qualname__}, which lineage "
            "cannot hash; pass it as a pathlib.Path, a plain value, or add it to `ignore=`"
        ) from None
    kind = type(value)
    return encoding.digest_of(
        ["value", f"{kind.__module__}.{kind.__qualname__}", digest_bytes(adapter.key(value))]
    )


def bytecode_identity(function: Any, qualname: str) -> Digest:
    """Identity of a function without source (``exec``, ``python -c``): its code object.

    Marshalled bytecode is specific to the Python version, so such a step misses the cache
    after an interpreter upgrade, which is the safe direction.

    Raises:
        UnsupportedValue: no source and no code object; pin one with ``version=``.
    """
    import marshal

    code = getattr(inspect.unwrap(function), "__code__", None)
    if code is None:
        raise UnsupportedValue(
            f"cannot identify the code of step {qualname!r}: no source and no bytecode; "
            "pass @lineage.step(version=...) to pin its identity"
        )
    return encoding.digest_of(["lineage/bytecode", qualname, marshal.dumps(code)])
