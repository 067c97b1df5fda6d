r"""Durable storage: the backend interface and its LMDB and memory backends, the on-disk
layout (:mod:`~lineage.storage.schema`, the only package that builds or splits a key), content
in blobs and packs and its staging, files in and out, the event log, and maintenance: verify
(re-hashing, and the live tables checked against the event log by
:mod:`~lineage.storage.crosscheck`) and gc.

May import :mod:`lineage.core`, :mod:`lineage.context` and :mod:`lineage.errors`; knows
nothing of revisions, of runs being recorded, or of the ``Store`` facade.

The namespaces of a store (``seq(8)`` is a big-endian counter, ``d`` a 16-byte digest,
``enc(x)`` the canonical encoding of ``x``; names never contain ``\0``)

::

    chunks       d(chunk)                        -> backend location of its bytes
    blobs        d(blob)                         -> enc([size, [d(chunk)], [d(child)]])
    records      d(record)                       -> the record's canonical bytes
    edges_out    d(src) edge(1) d(dst)           -> b""
    edges_in     d(dst) edge(1) d(src)           -> b""
    versions     name \0 seq(8)                  -> enc([version, d(target), time])
    version_keys name \0 version                 -> seq(8)
    stages       name \0 stage                   -> d(target)
    tags         tag                             -> d(target)
    history      name \0 seq(8)                  -> a RefEntry's canonical bytes
    by_kind      kind \0 d(record)               -> b""
    by_name      name \0 d(artifact)             -> b""
    by_op        op \0 started-µs(8) d(run)      -> b""
    run_ids      run id                          -> d(run)
    call_keys    d(call key)                     -> d(run)
    run_params   part(param) part(value) d(run)  -> b""
    run_metrics  part(metric) sortable(8) d(run) -> b""
    stat_cache   fsencode(absolute path)         -> enc([dev, ino, size, mtime_ns, d(blob), stat_ns,
                                                    ctime_ns])
    metrics      run id \0 metric \0 seq(8)      -> enc([step, time, value])
    events       seq(8)                          -> an event's canonical bytes (hash-chained)
    added        d(record)                       -> seq(8) of the event that added it
    settings     setting name                    -> enc(value)

``part(x)`` is ``enc(x)``, or ``0xc1`` (a byte msgpack never uses) + XXH3-128 of it when
longer than :data:`MAX_KEY_PART` (LMDB keys hold 511 bytes). The run value indexes only
pre-select candidates: queries check every condition again on the decoded record.
"""
