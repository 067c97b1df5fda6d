"""A local copy of a remote's write-once files, so that a push or pull fetches only what
is new.

Every file a remote holds under ``packs/*.meta``, ``refs/`` and ``events/`` is written once
and never changed: a meta is named by the hash of its bytes, refs and event segments are
made by exclusive create (see :mod:`lineage.remotes.layout`). A remote gc may remove one,
never rewrite it. So a copy read once stays right for as long as the remote lists its
path, and the listing stays the only source of truth: a copy is used only for a path the
remote lists now, and :meth:`RemoteCache.prune` drops copies of paths it no longer lists.

Without it every push and pull read every meta and ref again: after 120 pushes to moto's
S3 on loopback, a push with nothing new took 2.2 s, growing by ~18 ms a push.

A copy is also tied to the very file it was read from: the listing's size and ETag are
kept with it, and a copy whose file was replaced since (a remote emptied and pushed to
again) is not used. Only object stores give an ETag (S3, GCS, Azure); a remote in a
directory, over sftp or in memory gets no copies: a modification time can repeat on a
coarse clock, and reading those files again costs no network round trip.

Layout: ``<store>/remote-cache/<XXH3-128 of the remote's URL>/<path, "/" written "%2F">``,
each file the 16-byte XXH3-128 of the rest, then the listed identity and a newline, then
the content. A copy that fails its check, or cannot be read, is fetched again; a copy that
cannot be written is skipped (the cache only ever saves requests).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import xxhash

__all__ = ["FOLDER", "RemoteCache", "cacheable"]

FOLDER: Final = "remote-cache"
_CHECK: Final = 16


def cacheable(path: str) -> bool:
    """Whether the remote file at ``path`` (relative) is written once and never changed."""
    return path.startswith(("refs/", "events/")) or (
        path.startswith("packs/") and path.endswith(".meta"))


class RemoteCache:
    """Copies of one remote's write-once files, in one folder of a store."""

    def __init__(self, store: str | os.PathLike[str], url: str) -> None:
        self.folder = (Path(store).absolute() / FOLDER  # not moved by a later chdir
                       / xxhash.xxh3_128_hexdigest(url.encode()))

    def _file(self, path: str) -> Path:
        return self.folder / path.replace("%", "%25").replace("/", "%2F")

    def get(self, path: str, identity: str) -> bytes | None:
        """The copy of ``path`` taken from the file the remote lists as ``identity`` (its
        size and ETag), or ``None``: none kept, kept from another file at that
        path (a remote emptied and pushed to again), or failing its check."""
        try:
            stored = self._file(path).read_bytes()
        except OSError:
            return None
        check, body = stored[:_CHECK], stored[_CHECK:]
        if xxhash.xxh3_128_digest(body) != check:
            return None
        label, _, data = body.partition(b"\n")
        return data if label == identity.encode() else None

    def put(self, path: str, identity: str, data: bytes) -> None:
        """Keep a copy of ``path`` as read from the file listed as ``identity`` (written
        aside and renamed into place: a reader sees a whole copy or none)."""
        target = self._file(path)
        aside = target.with_name(f".{target.name}.{os.getpid()}")
        body = identity.encode().replace(b"\n", b" ") + b"\n" + data
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            aside.write_bytes(xxhash.xxh3_128_digest(body) + body)
            os.replace(aside, target)
        except OSError:
            aside.unlink(missing_ok=True)

    def prune(self, listed: Iterable[str]) -> None:
        """Drop the copies of paths the remote no longer lists (``listed``: all it lists)."""
        keep = {self._file(path).name for path in listed if cacheable(path)}
        try:
            names = os.listdir(self.folder)
        except OSError:
            return
        for name in names:
            if name not in keep and not name.startswith("."):
                (self.folder / name).unlink(missing_ok=True)
