r"""The on-disk layout: every namespace's keys and values, in this package.

Nothing outside it builds or splits a key. A namespace is a sorted map of ``bytes -> bytes``
(an LMDB named database); names are validated never to contain ``\0``, so ``name \0``
prefixes are exact. ``seq(8)`` is a big-endian 64-bit counter, ``d`` a 16-byte digest,
``enc(x)`` the canonical encoding of ``x``; the layout of every namespace is tabled in
:mod:`lineage.storage`.

One module per part of the layout: :mod:`~.keys` (namespaces, edge types, key parts),
:mod:`~.records` (records, their indexes, edges, run indexes, metric series), :mod:`~.refs`
(versions, stages, tags, history), :mod:`~.content` (manifests, chunk locations, the stat
cache), :mod:`~.log` (events, settings) and :mod:`~.entries` (what any entry names, for
point-in-time views). Their names are re-exported here, so callers write
``schema.read_record``; a part is imported on the first use of one of its names, so opening
a store imports only :mod:`~.keys`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers (pyproject lets mypy see them re-exported)
    from lineage.storage.schema.content import (
        Manifest,
        StatEntry,
        chunk_location,
        decode_manifest,
        digest_entries,
        manifest,
        put_chunk_location,
        put_manifest,
        put_stat_entry,
        raw_manifest,
        stat_entry,
        stat_key,
        stat_keys,
    )
    from lineage.storage.schema.entries import (
        entry_records,
        entry_time,
    )
    from lineage.storage.schema.keys import (
        DATA_FLOW,
        EDGE_CHILD,
        EDGE_DERIVED,
        EDGE_GENERATED,
        EDGE_NAMES,
        EDGE_USED,
        EVENT_GENESIS,
        EVENT_TAG,
        MAX_KEY_PART,
        NAMESPACES,
        name_key,
        split_name_key,
    )
    from lineage.storage.schema.log import (
        added_seq,
        append_event,
        event_time,
        events,
        get_setting,
        last_event,
        put_setting,
    )
    from lineage.storage.schema.records import (
        DERIVED_INDEXES,
        Edge,
        add_edge,
        artifacts_named,
        digests_with_prefix,
        downstream,
        index_entries,
        index_record,
        is_kind,
        key_part,
        metric_points,
        next_metric_seq,
        put_metric_point,
        raw_record,
        read_record,
        record_digests,
        run_by_id,
        run_for_call,
        run_ops,
        runs_by_metric,
        runs_by_param,
        runs_of_op,
        runs_with_metric,
        runs_with_param_part,
        unindex_record,
        upstream,
    )
    from lineage.storage.schema.refs import (
        VersionEntry,
        all_stages,
        all_tags,
        all_versions,
        append_history,
        history,
        history_names,
        latest_version,
        put_stage,
        put_tag,
        put_version,
        stage_target,
        stages,
        tag_target,
        version_entry,
        version_labels,
        versioned_names,
        versions,
    )

#: The part of the layout each re-exported name lives in.
_PART_OF = {
    "DATA_FLOW": "keys",
    "EDGE_CHILD": "keys",
    "EDGE_DERIVED": "keys",
    "EDGE_GENERATED": "keys",
    "EDGE_NAMES": "keys",
    "EDGE_USED": "keys",
    "EVENT_GENESIS": "keys",
    "EVENT_TAG": "keys",
    "DERIVED_INDEXES": "records",
    "Edge": "records",
    "MAX_KEY_PART": "keys",
    "Manifest": "content",
    "NAMESPACES": "keys",
    "StatEntry": "content",
    "VersionEntry": "refs",
    "add_edge": "records",
    "added_seq": "log",
    "all_stages": "refs",
    "all_tags": "refs",
    "all_versions": "refs",
    "append_event": "log",
    "append_history": "refs",
    "artifacts_named": "records",
    "chunk_location": "content",
    "decode_manifest": "content",
    "digest_entries": "content",
    "digests_with_prefix": "records",
    "downstream": "records",
    "entry_records": "entries",
    "entry_time": "entries",
    "event_time": "log",
    "events": "log",
    "get_setting": "log",
    "history": "refs",
    "history_names": "refs",
    "index_entries": "records",
    "index_record": "records",
    "is_kind": "records",
    "key_part": "records",
    "last_event": "log",
    "latest_version": "refs",
    "manifest": "content",
    "metric_points": "records",
    "name_key": "keys",
    "next_metric_seq": "records",
    "put_chunk_location": "content",
    "put_manifest": "content",
    "put_metric_point": "records",
    "put_setting": "log",
    "put_stage": "refs",
    "put_stat_entry": "content",
    "put_tag": "refs",
    "put_version": "refs",
    "raw_manifest": "content",
    "raw_record": "records",
    "read_record": "records",
    "record_digests": "records",
    "run_by_id": "records",
    "run_for_call": "records",
    "run_ops": "records",
    "runs_by_metric": "records",
    "runs_by_param": "records",
    "runs_of_op": "records",
    "runs_with_metric": "records",
    "runs_with_param_part": "records",
    "split_name_key": "keys",
    "stage_target": "refs",
    "stages": "refs",
    "stat_entry": "content",
    "stat_key": "content",
    "stat_keys": "content",
    "tag_target": "refs",
    "unindex_record": "records",
    "upstream": "records",
    "version_entry": "refs",
    "version_labels": "refs",
    "versioned_names": "refs",
    "versions": "refs",
}

__all__ = sorted(_PART_OF)


if not TYPE_CHECKING:  # hidden from type checkers: a misspelt name stays an error for them

    def __getattr__(name: str) -> Any:
        part = _PART_OF.get(name)
        if part is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}.{part}"), name)
        globals()[name] = value  # later lookups skip this function
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
