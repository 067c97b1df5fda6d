"""A hypothesis state machine that drives stores side by side with a plain-dict model.

The model knows the rules of versions, tags, stages and gc from DESIGN.md; every store must
agree with it, and the stores with each other digest for digest, after every step. As zarr
ships ``zarr.testing.stateful``, lineage ships this machine so that any backend can be
checked: subclass :class:`StoreStateMachine`, set ``backends`` to factories ``(directory)
-> Backend``, and collect ``YourMachine.TestCase`` with pytest.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from lineage.core import encoding
from lineage.core.records import Artifact
from lineage.errors import InvalidName, LineageError, RecordTypeError, RevisionNotFound
from lineage.storage import schema
from lineage.storage.base import Backend
from lineage.storage.lmdb import LmdbBackend
from lineage.storage.memory import MemoryBackend
from lineage.store import Store
from lineage.testing import snapshot

__all__ = ["StoreStateMachine"]

NAMES = ["data", "model"]
TAGS = ["best", "first", "data"]  # "data" is also a name: they must not shadow each other
STAGES = ["production", "staging", "v2"]  # "v2" reads as a version: refused as a stage
VERSIONS = ["v1", "v2", "v9", "rc-1", "production"]
BLOBS = [b"", b"a", b"b", b"patient rows", b"x" * 70_000]
CONFIGS: list[Any] = [{"C": 0.5}, {"C": 1}, {"C": 1.0}, ["a", 1], ("a", 1), {"layers": [8, 8]}]

# fsync costs nothing on tmpfs: many more steps fit in the time budget, same LMDB code paths.
FAST_TMP = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None

Key = tuple[str, bytes]  # what identifies content: ("bytes", data) or ("config", encoding)
Art = tuple[str | None, Key]  # an artifact: its name and its content


def _key(value: Any) -> Key:
    return ("bytes", value) if isinstance(value, bytes) else ("config", encoding.encode(value))


def _resolve(store: Store, revision: str) -> Any:
    return store.resolve(revision)


def _loaded(key: Key) -> Any:
    return key[1] if key[0] == "bytes" else encoding.decode(key[1])


def _lmdb(directory: Path) -> Backend:
    return LmdbBackend(directory / "store")


def _memory(directory: Path) -> Backend:
    return MemoryBackend()


class StoreStateMachine(RuleBasedStateMachine):
    """Runs every operation on each store and on the model, then compares.

    ``backends`` makes the stores under test, each in a fresh temporary directory; by
    default the LMDB backend and the memory backend, side by side.
    """

    backends: tuple[Callable[[Path], Backend], ...] = (_lmdb, _memory)

    #: hypothesis settings a subclass's ``TestCase`` runs with (40 steps, no deadline)
    SETTINGS = settings(stateful_step_count=40, deadline=None)

    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="lineage-stateful-", dir=FAST_TMP))
        self.stores = [Store(make(self.directory)) for make in self.backends]
        self.versions: dict[str, list[tuple[str, Art]]] = {}
        self.stages: dict[tuple[str, str], Art] = {}
        self.tags: dict[str, Art] = {}
        self.unnamed: set[Art] = set()
        self.history: dict[str, list[tuple[str, str, Art | None]]] = {}
        self.digests: dict[Art, str] = {}

    def teardown(self) -> None:
        for store in self.stores:
            store.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    # -- helpers ------------------------------------------------------------------------

    def both(self, action: Callable[[Store], Any], error: type[Exception] | None) -> list[Any]:
        """Run ``action`` on each store; with ``error``, expect it and an unchanged store."""
        results = []
        for store in self.stores:
            if error is None:
                results.append(action(store))
                continue
            before = snapshot(store._backend)
            with pytest.raises(error):
                action(store)
            assert snapshot(store._backend) == before
        return results

    def learn(self, art: Art, results: list[Artifact]) -> None:
        digests = {result.digest for result in results}
        assert len(digests) == 1, "the stores gave one artifact different digests"
        digest = digests.pop()
        assert self.digests.setdefault(art, digest) == digest

    def live(self) -> list[Art]:
        named = {art for versions in self.versions.values() for _v, art in versions}
        return sorted(named | self.unnamed | set(self.tags.values()), key=repr)

    def revisions_of(self, art: Art) -> list[str]:
        found = [self.digests[art], self.digests[art][:10]]
        name = art[0]
        if name is not None:
            found += [f"{name}@{v}" for v, a in self.versions[name] if a == art]
        return found

    def version_holding(self, name: str, art: Art) -> int:
        versions = self.versions[name]
        return max(i for i, (_v, a) in enumerate(versions) if a == art)

    def expected_resolutions(self) -> list[tuple[str, Art, str | None]]:
        found: list[tuple[str, Art, str | None]] = []
        for name, versions in self.versions.items():
            latest = versions[-1][0]
            found.append((name, versions[-1][1], latest))
            for index, (version, art) in enumerate(versions):
                back = len(versions) - 1 - index
                found += [(f"{name}@{version}", art, version), (f"{name}~{back}", art, version),
                          (f"{name}@{latest}~{back}", art, version)]
        for (name, stage), art in self.stages.items():
            index = self.version_holding(name, art)
            found.append((f"{name}@{stage}", art, self.versions[name][index][0]))
            if index:
                before = self.versions[name][index - 1]
                found.append((f"{name}@{stage}~1", before[1], before[0]))
        for tag, art in self.tags.items():
            held = None if art[0] is None else self.versions[art[0]][
                self.version_holding(art[0], art)][0]
            found.append((tag, art, held))  # a tag resolves to the version holding its target
            if art[0] is not None and self.version_holding(art[0], art):
                before = self.versions[art[0]][self.version_holding(art[0], art) - 1]
                found.append((f"{tag}~1", before[1], before[0]))
        found += [(self.digests[art], art, None) for art in self.live()]
        return found

    def add_history(self, name: str, ref: str, key: str, target: Art | None) -> None:
        self.history.setdefault(name, []).append((ref, key, target))

    # -- rules --------------------------------------------------------------------------

    @rule(name=st.sampled_from(NAMES), value=st.sampled_from(BLOBS + CONFIGS),
          version=st.none() | st.sampled_from(VERSIONS))
    def add(self, name: str, value: Any, version: str | None) -> None:
        art: Art = (name, _key(value))
        requested = version
        existing = self.versions.get(name, [])
        taken = {v for v, _a in existing} | {s for (n, s) in self.stages if n == name}
        error: type[LineageError] | None = None
        if name in self.tags:
            error = InvalidName
        elif version is None:
            if existing and existing[-1][1] == art:
                version = existing[-1][0]
            else:
                number = len(existing) + 1
                while f"v{number}" in taken:
                    number += 1
                version = f"v{number}"
        elif version in dict(existing):
            if dict(existing)[version] != art:
                error = InvalidName
        elif version in taken:
            error = InvalidName  # a stage of that name
        results = self.both(lambda s: s.add(value, name=name, version=requested), error)
        if error is not None:
            return
        assert version is not None and {r.version for r in results} == {version}
        self.learn(art, results)
        if version not in dict(existing):
            self.versions.setdefault(name, []).append((version, art))
            self.add_history(name, "version", version, art)

    @rule(value=st.sampled_from(BLOBS + CONFIGS))
    def add_unnamed(self, value: Any) -> None:
        art: Art = (None, _key(value))
        results = self.both(lambda s: s.add(value), None)
        assert {r.version for r in results} == {None}
        self.learn(art, results)
        self.unnamed.add(art)

    @precondition(lambda self: self.live())
    @rule(tag=st.sampled_from(TAGS), data=st.data())
    def tag(self, tag: str, data: st.DataObject) -> None:
        art = data.draw(st.sampled_from(self.live()))
        revision = data.draw(st.sampled_from(self.revisions_of(art)))
        error = InvalidName if tag in self.versions else None
        self.both(lambda s: s.tag(revision, tag), error)
        if error is None and self.tags.get(tag) != art:
            self.tags[tag] = art
            self.add_history(tag, "tag", tag, art)
            if art[0] is not None and art[0] != tag:
                self.add_history(art[0], "tag", tag, art)

    @rule(tag=st.sampled_from(TAGS))
    def untag(self, tag: str) -> None:
        error = None if tag in self.tags else RevisionNotFound
        self.both(lambda s: s.untag(tag), error)
        if error is None:
            del self.tags[tag]
            self.add_history(tag, "tag", tag, None)

    @precondition(lambda self: self.live())
    @rule(stage=st.sampled_from(STAGES), data=st.data())
    def promote(self, stage: str, data: st.DataObject) -> None:
        art = data.draw(st.sampled_from(self.live()))
        revision = data.draw(st.sampled_from(self.revisions_of(art)))
        name = art[0]
        error: type[Exception] | None = None
        if name is None:
            error = RecordTypeError  # an unnamed artifact has no stages
        elif stage in dict(self.versions[name]) or re.fullmatch(r"v\d+", stage):
            error = InvalidName
        self.both(lambda s: s.promote(revision, stage), error)
        if error is None and name is not None and self.stages.get((name, stage)) != art:
            self.stages[(name, stage)] = art
            self.add_history(name, "stage", stage, art)

    @rule()
    def gc(self) -> None:
        garbage = self.unnamed - set(self.tags.values())
        reports = self.both(lambda s: s.gc(), None)
        assert {(r.records, r.blobs, r.chunks) for r in reports} == {
            (reports[0].records, reports[0].blobs, reports[0].chunks)
        }
        assert reports[0].records == len(garbage)
        for art in garbage:
            self.both(partial(_resolve, revision=self.digests[art]), RevisionNotFound)
        self.unnamed -= garbage

    @precondition(lambda self: self.live())
    @rule(data=st.data())
    def load(self, data: st.DataObject) -> None:
        art = data.draw(st.sampled_from(self.live()))
        revision = data.draw(st.sampled_from(self.revisions_of(art)))
        for loaded in self.both(lambda s: s.load(revision), None):
            assert loaded == _loaded(art[1])

    @rule()
    def resolve_everything(self) -> None:
        for revision, art, version in self.expected_resolutions():
            for record in self.both(partial(_resolve, revision=revision), None):
                assert (record.digest, record.version) == (self.digests[art], version), revision
        for name, versions in self.versions.items():
            too_far = f"{name}~{len(versions)}"
            self.both(partial(_resolve, revision=too_far), RevisionNotFound)
        self.both(lambda s: s.resolve("nosuchname"), RevisionNotFound)

    # -- invariants ---------------------------------------------------------------------

    @invariant()
    def versions_agree(self) -> None:
        for store in self.stores:
            assert store.names() == sorted(self.versions)
            for name, versions in self.versions.items():
                found = [(a.version, a.digest) for a in store.versions(name)]
                assert found == [(v, self.digests[art]) for v, art in versions]

    @invariant()
    def stages_and_tags_agree(self) -> None:
        for store in self.stores:
            for name in self.versions:
                expected = {s: self.digests[a] for (n, s), a in self.stages.items() if n == name}
                assert {s: a.digest for s, a in store.stages(name).items()} == expected
            with store._read() as txn:
                tags = {tag: target.hex() for tag, target in schema.all_tags(txn)}
            assert tags == {tag: self.digests[art] for tag, art in self.tags.items()}

    @invariant()
    def history_agrees(self) -> None:
        for store in self.stores:
            for name, moves in self.history.items():
                found = [(e.ref, e.key, e.target.hex() if e.target else None)
                         for e in store.log(name)]
                assert found == [(ref, key, self.digests[t] if t else None)
                                 for ref, key, t in moves]

