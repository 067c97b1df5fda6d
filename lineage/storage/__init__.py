"""Durable storage: the backend interface and its LMDB and memory backends, the on-disk
layout (:mod:`~lineage.storage.schema`, the only module that knows a key), content in
blobs and packs, files in and out, and maintenance (verify, gc).

May import :mod:`lineage.core` and :mod:`lineage.errors`; knows nothing of revisions,
runs being recorded, or the ``Store`` facade.
"""
