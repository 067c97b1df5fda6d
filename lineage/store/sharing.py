"""The ``Store`` methods for sharing: configured remotes, push, pull and a remote's gc.

They are a mixin of :class:`lineage.store.Store`, kept in their own module because they form
one concept: moving a store's records between machines. They delegate to
:mod:`lineage.remotes.operations`, imported lazily so that opening a store never imports
fsspec.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from lineage.core.hashing import Digest
    from lineage.core.records import Artifact, Run
    from lineage.remotes.config import Remote
    from lineage.remotes.gc import RemoteGcReport
    from lineage.remotes.transfer import TransferReport
    from lineage.store.store import Store

__all__ = ["SharingMethods"]

if TYPE_CHECKING:
    Revision = str | Digest | Artifact | Run


class SharingMethods:
    """Remote methods of :class:`~lineage.store.Store` (see the module docstring)."""

    def remote_add(self, name: str, url: str, *, replace: bool = False,
                   **storage_options: Any) -> Remote:
        """Configure a remote: a path, ``s3://bucket/prefix``, anything fsspec opens; only
        non-secret options are kept (:func:`lineage.remotes.config.add_remote`)."""
        from lineage.remotes import operations

        return operations.add(self._as_store(), name, url, storage_options, replace=replace)

    def remote_remove(self, name: str) -> Remote:
        """Forget remote ``name``; nothing on it is touched. Raises ``RemoteNotFound``."""
        from lineage.remotes import operations

        return operations.remove(self._as_store(), name)

    def remotes(self) -> list[Remote]:
        """The configured remotes, sorted by name."""
        from lineage.remotes import operations

        return operations.listing(self._as_store())

    def push(self, remote: str | None = None, revisions: Sequence[Revision] | None = None, *,
             progress: Callable[[int], None] | None = None, **options: Any) -> TransferReport:
        """Send a remote what it lacks; refs by compare-and-swap (``RefConflict``, checked
        before any content is sent); see :func:`lineage.remotes.transfer.push`."""
        from lineage.remotes import operations

        return operations.push(self._as_store(), remote, revisions, progress, options)

    def pull(self, remote: str | None = None, revisions: Sequence[Revision] | None = None, *,
             progress: Callable[[int], None] | None = None, **options: Any) -> TransferReport:
        """Fetch what this store lacks, re-hashed, in one transaction (``IntegrityError``,
        ``RefConflict``: nothing pulled); see :func:`lineage.remotes.transfer.pull`."""
        from lineage.remotes import operations

        return operations.pull(self._as_store(), remote, revisions, progress, options)

    def remote_gc(self, remote: str | None = None, *, dry_run: bool = True,
                  grace: float | None = None, **options: Any) -> RemoteGcReport:
        """Collect a remote's garbage, a dry run unless asked (:mod:`lineage.remotes.gc`)."""
        from lineage.remotes import operations

        return operations.collect(self._as_store(), remote, dry_run=dry_run, grace=grace,
                                  options=options)

    def _as_store(self) -> Store:
        return cast("Store", self)  # only Store mixes this class in
