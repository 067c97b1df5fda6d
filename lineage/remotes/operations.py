"""What the ``Store``'s remote methods do: configure, push, pull, collect a remote.

``remote`` arguments are a configured remote's name, a URL or path (used without being
configured), or ``None`` for the default remote (the only one, else ``origin``). Storage
options given to one call are merged over the remote's stored ones for that call only and
never written anywhere: that is how to pass a credential explicitly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from lineage.remotes import config
from lineage.remotes.cache import RemoteCache
from lineage.remotes.config import Remote
from lineage.remotes.connection import Connection, connect

if TYPE_CHECKING:
    from lineage.remotes.gc import RemoteGcReport
    from lineage.remotes.transfer import TransferReport
    from lineage.store.store import Store

__all__ = ["add", "collect", "listing", "pull", "push", "remove"]


def add(store: Store, name: str, url: str, options: dict[str, Any], *,
        replace: bool = False) -> Remote:
    """Configure a remote (see :func:`lineage.remotes.config.add_remote`)."""
    return store._write(lambda txn: config.add_remote(txn, name, url, options,
                                                      replace=replace))


def remove(store: Store, name: str) -> Remote:
    """Forget a remote (see :func:`lineage.remotes.config.remove_remote`)."""
    return store._write(lambda txn: config.remove_remote(txn, name))


def listing(store: Store) -> list[Remote]:
    """The configured remotes, sorted by name."""
    with store._read() as txn:
        return list(config.configured(txn).values())


def _open(store: Store, remote: str | None, options: dict[str, Any]) -> tuple[Remote,
                                                                              Connection]:
    with store._read() as txn:
        found = config.find_remote(txn, remote)
    config.check_options(options, persist=False)
    connection = connect(found, options)
    if store.path != ":memory:":
        connection.cache = RemoteCache(store.path, found.url)
    return found, connection


def push(store: Store, remote: str | None, revisions: Sequence[Any] | None,
         progress: Callable[[int], None] | None, options: dict[str, Any]) -> TransferReport:
    """Push (see :func:`lineage.remotes.transfer.push`)."""
    from lineage.remotes.transfer import push as push_to

    found, connection = _open(store, remote, options)
    return push_to(store._backend, connection, found, _revisions(revisions), progress)


def pull(store: Store, remote: str | None, revisions: Sequence[Any] | None,
         progress: Callable[[int], None] | None, options: dict[str, Any]) -> TransferReport:
    """Pull (see :func:`lineage.remotes.transfer.pull`)."""
    from lineage.remotes.transfer import pull as pull_from

    found, connection = _open(store, remote, options)
    return pull_from(store._backend, connection, found, _revisions(revisions), progress)


def collect(store: Store, remote: str | None, *, dry_run: bool, grace: float | None,
            options: dict[str, Any]) -> RemoteGcReport:
    """Collect a remote's garbage (see :func:`lineage.remotes.gc.collect`)."""
    from lineage.remotes.gc import GRACE_SECONDS
    from lineage.remotes.gc import collect as collect_on

    _found, connection = _open(store, remote, options)
    return collect_on(connection, dry_run=dry_run,
                      grace=GRACE_SECONDS if grace is None else grace)


def _revisions(revisions: Sequence[Any] | str | None) -> list[str] | None:
    """Revisions as strings (a record or digest by its hex digest); ``None``: everything."""
    if revisions is None:
        return None
    if isinstance(revisions, str):
        return [revisions]
    return [r if isinstance(r, str) else r.hex() if isinstance(r, bytes) else r.digest
            for r in revisions] or None
