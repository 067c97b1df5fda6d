"""Steps on executors (Dask workers, Prefect or Airflow tasks) that may not share a disk.

Where the workers see the store's directory (one machine, or a shared filesystem), nothing
is needed: a ``@lineage.step`` sent inside ``with store:`` carries the store's location and
records there from every worker process (LMDB is safe across processes; see
:meth:`lineage.tracking.step.Step.__reduce__`).

Where they do not, each worker keeps a store of its own and exchanges with a remote::

    def task(x):
        with through_remote("s3://team-bucket/lineage") :
            return featurize(x)        # a cache hit if any worker recorded it and pushed

:func:`through_remote` pulls before the block, so what any worker pushed is a cache hit
here; makes the worker's store current, so steps record into it; and pushes what the
block recorded afterwards (content and events: step runs move no refs, so workers never
contend for one; a failed call is pushed too). The worker's store lives at ``path``,
else ``LINEAGE_WORKER_STORE``, else a directory per remote under the temporary directory,
so later tasks on the same machine pull only what is new.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from lineage.core.hashing import digest_bytes

if TYPE_CHECKING:
    from lineage.store.store import Store

__all__ = ["through_remote", "worker_store_path"]


def worker_store_path(remote: str) -> str:
    """Where a worker keeps its store for ``remote`` (see the module docstring)."""
    chosen = os.environ.get("LINEAGE_WORKER_STORE")
    if chosen:
        return chosen
    return os.path.join(tempfile.gettempdir(),
                        f"lineage-worker-{digest_bytes(remote.encode()).hex()[:16]}")


@contextmanager
def through_remote(remote: str, path: str | os.PathLike[str] | None = None, *,
                   pull: bool = True, **storage_options: Any) -> Iterator[Store]:
    """A worker's own store, current for the block, exchanging with ``remote`` (a URL).

    Pulls first (unless ``pull=False``), pushes after the block, also when it raises (the
    block's error is what propagates; a failed push is noted on it).

    Raises:
        RemoteError, RefConflict, IntegrityError: as ``Store.pull`` and ``Store.push`` do.
    """
    from lineage.store.opening import open_store

    store = open_store(path if path is not None else worker_store_path(remote))
    with store:
        if pull:
            store.pull(remote, **storage_options)
        try:
            yield store
        except BaseException as error:
            try:
                store.push(remote, **storage_options)
            except Exception as failure:  # noqa: BLE001 - the block's error must win
                error.add_note(f"lineage: pushing the worker's records to {remote} failed: "
                               f"{type(failure).__name__}: {failure}")
            raise
        store.push(remote, **storage_options)
