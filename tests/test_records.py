"""The record classes: immutable, copied with ``replace``, pickled and copied whole, and
never sharing a default dict between two records."""

from __future__ import annotations

import copy
import copyreg
import io
import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lineage.core.hashing import digest_bytes
from lineage.core.records import Artifact, RefEntry, Run

_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1),
                     st.floats(allow_nan=False), st.text(max_size=8))


def _run(**changes: Any) -> Run:
    fields: dict[str, Any] = {
        "op": "train", "id": "r1", "inputs": {"data": digest_bytes(b"d")},
        "params": {"C": 0.5}, "metrics": {"auc": 0.9}, "started": 1.0, "ended": 2.0,
        "label": "first"}
    return Run(**{**fields, **changes})


@pytest.mark.parametrize("record", [Artifact(kind="config", name="c"), _run(),
                                    RefEntry("m", "stage", "production", None, None, 1.0, "u")])
def test_a_record_cannot_be_changed_in_place(record: Artifact | Run | RefEntry) -> None:
    with pytest.raises(AttributeError, match="immutable"):
        record.name = "other"  # type: ignore[misc]
    with pytest.raises(AttributeError, match="immutable"):
        del record.name


def test_replace_makes_a_changed_copy_with_its_own_digest() -> None:
    run = _run()
    failed = run.replace(status="failed", error={"type": "E"})
    assert (run.status, failed.status, failed.error) == ("ok", "failed", {"type": "E"})
    assert failed.raw_digest == _run(status="failed", error={"type": "E"}).raw_digest
    assert failed.raw_digest != run.raw_digest
    with pytest.raises(TypeError, match="no field 'stauts'"):
        run.replace(stauts="failed")


def test_a_version_is_a_view_that_keeps_the_identity() -> None:
    artifact = Artifact(kind="config", name="c", summary={"keys": 1})
    viewed = artifact.with_version("v2")
    assert viewed.version == "v2" and artifact.version is None
    assert viewed == artifact and viewed.raw_digest == artifact.raw_digest


def test_default_dicts_are_never_shared() -> None:
    first, second = Artifact(kind="a"), Artifact(kind="b")
    assert first.summary is not second.summary and first.meta is not second.meta
    one, other = Run(op="x", id="1"), Run(op="x", id="2")
    assert one.params is not other.params and one.inputs is not other.inputs


@given(params=st.dictionaries(st.text(max_size=5), _SCALARS, max_size=4),
       metrics=st.dictionaries(st.text(max_size=5), st.floats(allow_nan=False), max_size=3),
       label=st.none() | st.text(max_size=5), version=st.none() | st.text(max_size=5))
def test_records_pickle_and_copy_whole(params: dict[str, Any], metrics: dict[str, float],
                                       label: str | None, version: str | None) -> None:
    run = _run(params=params, metrics=metrics, label=label)
    artifact = Artifact(kind="model", name="m", blob=digest_bytes(b"x"), size=3,
                        summary={"params": params}, parents=(run.raw_digest,),
                        version=version)
    entry = RefEntry("m", "version", "v1", artifact.raw_digest, None, 2.0, "u",
                     reason="why", skipped=("lint",))
    for record in (run, artifact, entry):
        for back in (pickle.loads(pickle.dumps(record)), copy.copy(record),
                     copy.deepcopy(record)):
            assert type(back) is type(record)
            assert all(getattr(back, name) == getattr(record, name)
                       for name in record.FIELDS), record
            assert back == record and hash(back) == hash(record)


def test_ref_entries_compare_by_every_field() -> None:
    entry = RefEntry("m", "stage", "production", digest_bytes(b"t"), None, 1.0, "u")
    assert entry == RefEntry.decode(entry.encode())
    assert entry != entry.replace(reason="other")
    assert len({entry, RefEntry.decode(entry.encode())}) == 1
    assert repr(entry).startswith("RefEntry(name='m', ref='stage', key='production'")


def test_records_pickled_as_dataclasses_by_an_earlier_lineage_still_load() -> None:
    """Earlier records were slotted dataclasses: pickles hold ``copyreg.__newobj__`` and the
    list of field values, which ``__setstate__`` takes."""
    entry = RefEntry("m", "tag", "best", digest_bytes(b"t"), None, 1.0, "u", "why", ("lint",))
    for record in (_run(), Artifact(kind="model", name="m", version="v1"), entry):
        buffer = io.BytesIO()
        _DataclassStylePickler(buffer, protocol=4).dump(record)
        back = pickle.loads(buffer.getvalue())
        assert type(back) is type(record)
        assert all(getattr(back, n) == getattr(record, n) for n in record.FIELDS)


class _DataclassStylePickler(pickle.Pickler):
    """Pickles records the way slotted dataclasses did: the class, then the field values."""

    def reducer_override(self, obj: object) -> Any:
        if isinstance(obj, Artifact | Run | RefEntry):
            return copyreg.__newobj__, (type(obj),), [getattr(obj, n) for n in obj.FIELDS]
        return NotImplemented


def test_a_ref_entry_pickled_before_it_had_skipped_loads_with_none_skipped() -> None:
    """RefEntry once had eight fields (``skipped`` came later): its old pickles hold eight
    values, and the missing one takes its default."""
    entry = RefEntry("m", "stage", "production", digest_bytes(b"t"), None, 1.0, "u", "why")
    buffer = io.BytesIO()
    _EightFieldPickler(buffer, protocol=2).dump(entry)
    back = pickle.loads(buffer.getvalue())
    assert back == entry and back.skipped == ()


class _EightFieldPickler(pickle.Pickler):
    def reducer_override(self, obj: object) -> Any:
        if isinstance(obj, RefEntry):
            return copyreg.__newobj__, (RefEntry,), [getattr(obj, n) for n in obj.FIELDS[:8]]
        return NotImplemented
