"""The live tables checked against the event chain: what ``verify`` adds to re-hashing.

The event chain is sealed (:mod:`lineage.storage.events`); the tables that answer queries
are not, so someone with the LMDB files could repoint a stage and leave the chain intact.
:class:`TableCheck` is given every event of the chain in order, then compares each table
with what the chain (and, for moves made before the chain began, the history) says:

- **stages and tags**: every move replayed — the history entries from before the chain,
  then the ``ref`` events, then the stages and tags a ``pull`` kept local — leaves each at
  one target, which ``stages`` / ``tags`` must hold;
- **versions**: entry *n* of a name in ``versions`` is the *n*-th version its moves created
  (label, target and time, against the ``ref`` event and the history entry), no entry lacks
  such a move, and the label index (``version_keys``) points each label at its entry;
- **records**: every record a ``record`` event added, and no ``gc`` event removed since,
  is in ``records``; every record there was added by an event, except as many as the
  ``start`` event counted for a store made before the log (less those gc removed since);
- **the ``added`` index** names, for each record an event added, that event, and nothing
  else (point-in-time views read it);
- **policies**: each stage's stored policy has the digest its last ``policy`` event
  recorded (none, when there was no such event or it reset the stage to the default).

Each problem names the ref, record or stage and what disagrees, in the words verify uses.
The events and the history are read once (by :func:`~lineage.storage.events.verify_chain`),
the versions, stages, tags and ``added`` index once more, with one lookup per version label
and per record: linear in the size of the store.

Before the log: a store made before it starts its chain at the upgrade, and the ``start``
event counts its records and history entries. Those history entries stand in for the
events they predate (they are not sealed), and the records from then are checked by count.
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

from lineage.core.encoding import digest_of
from lineage.core.hashing import Digest
from lineage.core.records import RefEntry
from lineage.errors import LineageError
from lineage.storage import schema
from lineage.storage.base import ReadTxn
from lineage.storage.events import Event

__all__ = ["POLICY_SETTING", "TableCheck"]

#: The setting holding every stage's stored policy, ``{stage: policy}`` (see
#: :mod:`lineage.audit.policy`); a ``policy`` event records the digest of one stage's value.
POLICY_SETTING: Final = "policies"

_Stream = tuple[str, str, str]  # ("stage", name, stage) or ("tag", tag, tag)
_BEFORE: Final = "before the event log"  # a stream's value as the history before it left it


class _Move(NamedTuple):
    target: Digest | None
    seq: int  # the event that made it


class _Version(NamedTuple):
    position: int  # in the name's history
    label: str
    target: Digest | None
    seq: int | None  # the ref event that created it; None: before the event log


class TableCheck:
    """A :class:`~lineage.storage.events.ChainObserver`: give it to
    :func:`~lineage.storage.events.verify_chain`, and each record present to
    :meth:`saw_record`; :meth:`finish` returns the problems found in the tables."""

    def __init__(self) -> None:
        self._problems: list[str] = []
        self._history_start: dict[str, int] = {}
        self._records_start = 0
        self._refs: dict[_Stream, _Move] = {}
        self._run: dict[_Stream, set[Digest | str | None]] = {}  # moved since a non-ref event
        self._unsure: dict[_Stream, set[Digest | str | None]] = {}
        self._versions: dict[str, list[_Version]] = {}  # name -> the versions made, in order
        self._version_times: dict[str, dict[int, float]] = {}  # name -> position -> time
        self._before: dict[_Stream, Digest | None] = {}  # as the history before the log left it
        self._added: dict[Digest, int] = {}  # record -> the event that added it, while live
        self._names: dict[Digest, str] = {}  # record -> the name its event gave, if any
        self._removed: dict[Digest, int] = {}  # record -> the gc event that removed it
        self._gone_before = 0  # records from before the log that gc removed
        self._policies: dict[str, _Move] = {}
        self._present: list[Digest] = []

    # -- the chain --------------------------------------------------------------------------

    def see(self, event: Event) -> None:
        """Take one event of the chain (oldest first)."""
        try:
            self._see(event, event.details)
        except (KeyError, TypeError, ValueError) as exc:
            self._problems.append(f"event {event.seq}: its {event.action} details are "
                                  f"malformed ({exc}); the tables cannot be checked against it")

    def _see(self, event: Event, details: dict[str, Any]) -> None:
        if event.action == "ref":
            self._see_ref(event.seq, details)
            return
        run, self._run = self._run, {}
        if event.action == "start":
            self._history_start = {str(k): int(v) for k, v in
                                   (details.get("history") or {}).items()}
            self._records_start = int(details.get("records") or 0)
        elif event.action == "record":
            digest = Digest(details["digest"])
            self._added[digest] = event.seq
            if details.get("name"):
                self._names[digest] = str(details["name"])
            self._removed.pop(digest, None)
        elif event.action == "gc":
            for raw in details.get("removed") or ():
                digest = Digest(raw)
                if self._added.pop(digest, None) is None:
                    self._gone_before += 1
                self._removed[digest] = event.seq
        elif event.action == "policy":
            self._policies[str(details["stage"])] = _Move(_digest(details.get("policy")),
                                                          event.seq)
        elif event.action == "pull":
            self._see_pull(event.seq, details, run)

    def _see_ref(self, seq: int, details: dict[str, Any]) -> None:
        name, ref, key = str(details["name"]), str(details["ref"]), str(details["key"])
        target = _digest(details.get("target"))
        if ref == "version":
            self._versions.setdefault(name, []).append(
                _Version(int(details["position"]), key, target, seq))
            return
        if ref != "stage" and not (ref == "tag" and name == key):
            return  # a tag's move copied into the tagged artifact's history
        stream = (ref, name, key)
        self._run.setdefault(stream, {self._current(stream)}).add(target)
        self._refs[stream] = _Move(target, seq)
        self._unsure.pop(stream, None)

    def _see_pull(self, seq: int, details: dict[str, Any], run: dict[_Stream,
                                                                     set[Digest | str | None]]
                  ) -> None:
        kept = details.get("kept")
        if kept is None:  # an older pull does not say which moves it kept local: any value
            self._unsure.update(run)  # the stream took in the pull's moves may stand
            return
        for ref, name, key, target in kept:
            self._refs[(str(ref), str(name), str(key))] = _Move(_digest(target), seq)

    def _current(self, stream: _Stream) -> Digest | str | None:
        move = self._refs.get(stream)
        return _BEFORE if move is None else move.target

    def see_history(self, name: str, entries: list[RefEntry]) -> None:
        """Take the whole history of ``name`` (after every event)."""
        made = self._history_start.get(name, 0)
        before = [_Version(p, e.key, e.target, None) for p, e in enumerate(entries[:made])
                  if e.ref == "version"]
        if before:
            self._versions[name] = before + self._versions.get(name, [])
        for entry in entries[:made]:
            if entry.ref == "stage" or (entry.ref == "tag" and entry.name == entry.key):
                self._before[(entry.ref, entry.name, entry.key)] = entry.target
        self._version_times[name] = {p: e.time for p, e in enumerate(entries)
                                     if e.ref == "version"}

    def saw_record(self, digest: Digest) -> None:
        """Take the digest of one record present in ``records``."""
        self._present.append(digest)

    # -- the tables -------------------------------------------------------------------------

    def finish(self, txn: ReadTxn) -> list[str]:
        """Compare the tables in ``txn`` with the chain; return the problems."""
        self._check_versions(txn)
        self._check_refs(txn)
        self._check_records(txn)
        self._check_policies(txn)
        return self._problems

    def _check_versions(self, txn: ReadTxn) -> None:
        live: dict[str, dict[int, schema.VersionEntry]] = {}
        try:
            for name, version in schema.all_versions(txn):
                live.setdefault(name, {})[version.seq] = version
        except LineageError as exc:
            self._problems.append(f"versions: {exc}")
        for name in sorted(set(live) | set(self._versions)):
            self._compare_versions(name, live.get(name, {}))
        self._check_labels(txn, live)

    def _compare_versions(self, name: str, live: dict[int, schema.VersionEntry]) -> None:
        """Entry *n* of ``versions`` is the *n*-th version the moves of ``name`` made."""
        live = dict(live)
        times = self._version_times.get(name, {})
        for number, made in enumerate(self._versions.get(name, [])):
            found = live.pop(number, None)
            label = f"version {name}@{made.label}"
            by = "its history entry from before the event log" if made.seq is None else (
                f"the event that created it (event {made.seq})")
            if found is None:
                self._problems.append(f"{label}: created by {by} but missing from versions: "
                                      "it was removed outside lineage")
            elif (found.version, found.target) != (made.label, made.target):
                self._problems.append(
                    f"{label}: versions entry {number} names {name}@{found.version} -> "
                    f"{_show(found.target)}, but {by} says {name}@{made.label} -> "
                    f"{_show(made.target)}: it was changed outside lineage")
            elif times.get(made.position, found.time) != found.time:
                self._problems.append(f"{label}: its time differs from its history entry "
                                      f"{made.position}: it was changed outside lineage")
        for number, found in sorted(live.items()):
            self._problems.append(f"version {name}@{found.version}: versions entry {number} "
                                  "was created by no move of the history or event: it was "
                                  "added outside lineage")

    def _check_labels(self, txn: ReadTxn, live: dict[str, dict[int, schema.VersionEntry]]
                      ) -> None:
        """The label index and the versions agree, both ways."""
        indexed: dict[tuple[str, str], int] = {}
        for name in schema.versioned_names(txn):
            for label in schema.version_labels(txn, name):
                try:
                    found = schema.version_entry(txn, name, label)
                except LineageError:
                    found = None
                if found is not None and found.version == label:
                    indexed[(name, label)] = found.seq
                    continue
                points = "no entry" if found is None else (
                    f"entry {found.seq}, which is {name}@{found.version}")
                self._problems.append(f"version label {name}@{label}: the label index "
                                      f"points at {points}: it was changed outside lineage")
        for name, entries in sorted(live.items()):
            for number, entry in sorted(entries.items()):
                if indexed.get((name, entry.version)) != number:
                    self._problems.append(f"version {name}@{entry.version}: versions entry "
                                          f"{number} is not in the label index: it was "
                                          "changed outside lineage")

    def _check_refs(self, txn: ReadTxn) -> None:
        before = self._before
        live: dict[_Stream, Digest] = {("stage", name, stage): target
                                       for name, stage, target in schema.all_stages(txn)}
        live.update({("tag", tag, tag): target for tag, target in schema.all_tags(txn)})
        for stream in sorted(set(live) | set(before) | set(self._refs)):
            found = live.get(stream)
            move = self._refs.get(stream)
            expected = move.target if move is not None else before.get(stream)
            unsure = self._unsure.get(stream)
            if unsure is not None:
                allowed = {before.get(stream) if v == _BEFORE else v for v in unsure}
                if found in allowed:
                    continue
            elif found == expected:
                continue
            ref, name, key = stream
            label = f"stage {name}@{key}" if ref == "stage" else f"tag {key}"
            by = (f"its last move (event {move.seq})" if move is not None else
                  "its history from before the event log" if stream in before else "no move")
            self._problems.append(f"{label}: points at {_show(found)}, but {by} left it at "
                                  f"{_show(expected)}: it was changed outside lineage")

    def _check_records(self, txn: ReadTxn) -> None:
        present = set(self._present)
        for digest, seq in self._added.items():
            named = f" ({self._names[digest]})" if digest in self._names else ""
            if digest not in present:
                self._problems.append(f"record {digest.hex()}{named}: added by event {seq} but "
                                      "missing from records: it was deleted outside lineage")
            elif (index := schema.added_seq(txn, digest)) != seq:
                said = "has no entry" if index is None else f"says event {index}"
                self._problems.append(f"record {digest.hex()}{named}: the added index {said}, but "
                                      f"event {seq} added it: the index was changed outside "
                                      "lineage")
        unlogged = []
        for digest in self._present:
            if digest in self._added:
                continue
            if (index := schema.added_seq(txn, digest)) is not None:
                self._problems.append(f"record {digest.hex()}: the added index says event "
                                      f"{index}, but no event added it: the index was changed "
                                      "outside lineage")
            if digest in self._removed:
                self._problems.append(f"record {digest.hex()}: removed by gc (event "
                                      f"{self._removed[digest]}) but still in records: it was "
                                      "put back outside lineage")
            else:
                unlogged.append(digest)
        for digest, _seq in schema.digest_entries(txn, "added"):
            if digest not in self._added and digest not in present:
                self._problems.append(f"record {digest.hex()}: in the added index but neither "
                                      "in records nor added by an event: the index was "
                                      "changed outside lineage")
        self._count_older(unlogged)

    def _count_older(self, unlogged: list[Digest]) -> None:
        """Records no event added are those from before the log, as many as it counted."""
        older = max(self._records_start - self._gone_before, 0)
        if len(unlogged) > older and older == 0:
            self._problems.extend(f"record {digest.hex()}: no event added it: it was added "
                                  "outside lineage" for digest in unlogged)
        elif len(unlogged) > older:
            listed = ", ".join(d.hex() for d in unlogged[:5])
            self._problems.append(
                f"records: {len(unlogged)} records were added by no event, but the event log "
                f"began with {older} still present from before it: "
                f"{len(unlogged) - older} were added outside lineage (among {listed}"
                f"{', …' if len(unlogged) > 5 else ''})")
        elif len(unlogged) < older:
            self._problems.append(
                f"records: {older - len(unlogged)} of the {older} records from before the "
                "event log are missing from records: they were deleted outside lineage")

    def _check_policies(self, txn: ReadTxn) -> None:
        try:
            stored = schema.get_setting(txn, POLICY_SETTING)
        except LineageError as exc:
            stored = None
            self._problems.append(f"policies: the stored policies are unreadable ({exc})")
        if stored is not None and not isinstance(stored, dict):
            self._problems.append("policies: the stored policies are not a table of stages: "
                                  "they were changed outside lineage")
            stored = None
        table = {str(stage): value for stage, value in (stored or {}).items()}
        for stage in sorted(set(table) | set(self._policies)):
            move = self._policies.get(stage)
            expected = move.target if move is not None else None
            try:
                found = digest_of(table[stage]) if stage in table else None
            except (LineageError, TypeError, ValueError) as exc:
                self._problems.append(f"policy of stage {stage!r}: the stored policy is "
                                      f"unreadable ({exc})")
                continue
            if found == expected:
                continue
            by = f"its last policy event (event {move.seq})" if move is not None else \
                "no policy event"
            self._problems.append(
                f"policy of stage {stage!r}: the stored policy is {_policy(found)}, but {by} "
                f"set {_policy(expected)}: it was changed outside lineage")


def _digest(value: Any) -> Digest | None:
    return Digest(value) if isinstance(value, bytes) and len(value) == 16 else None


def _show(digest: Digest | None) -> str:
    return "nothing" if digest is None else digest.hex()


def _policy(digest: Digest | None) -> str:
    return "none (the built-in default)" if digest is None else digest.hex()
