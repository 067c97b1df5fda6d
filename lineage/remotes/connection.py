"""Talking to a remote through fsspec: opening it, bounded retries, clear errors.

:class:`Connection` is the only place that calls fsspec. Every call goes through
:meth:`Connection.call`, which retries a transient network error (a refused or reset
connection, a timeout) up to :data:`RETRIES` times with growing pauses and then raises
:class:`~lineage.errors.RemoteError`; other failures are translated at once into one clear
:class:`~lineage.errors.LineageError` (unknown scheme, missing bucket, bad credentials,
unreachable endpoint), never a library's traceback.

Exclusive creation (:meth:`Connection.create`) is the compare-and-swap primitive refs rely
on: S3 refuses an ``If-None-Match: *`` write of an existing key with 412 (s3fs's ``"xb"``
mode), a local directory refuses ``O_EXCL``; both surface as ``FileExistsError``.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from typing import IO, Any, Final, TypeVar

from lineage.errors import InvalidRemote, LineageError, RemoteError
from lineage.remotes.cache import RemoteCache, cacheable
from lineage.remotes.config import Remote

__all__ = ["RETRIES", "TEMPORARY", "Connection", "connect"]

T = TypeVar("T")

RETRIES: Final = 4  # attempts of one call before a network error is reported
_PAUSES: Final = (0.2, 0.5, 1.0)
_WRITE_BLOCK: Final = 16 * 1024 * 1024  # multipart part size for streamed writes
#: Folder (under a local remote's root) where small files are written before being renamed
#: into place; no listing of packs, refs or events looks there.
TEMPORARY: Final = "tmp"


def _identity(info: dict[str, Any]) -> str | None:
    """What a listing says of one file that changes if the file is replaced: its size and
    ETag, which object stores derive from the content or make new for every write; ``None``
    when the listing gives none (a directory, sftp, memory: their times can repeat on a
    coarse clock, and reading their files again costs no network round trip), and then no
    copy of the file is kept."""
    marker = info.get("ETag") or info.get("etag")
    return f"{info.get('size')}:{marker}" if marker else None


def connect(remote: Remote, options: dict[str, Any] | None = None) -> Connection:
    """Open the filesystem of ``remote`` (its stored options, then ``options`` for this
    call only).

    Raises:
        InvalidRemote: the scheme is unknown, or its fsspec implementation is not installed.
        RemoteError: the filesystem cannot be set up with these options.
    """
    try:
        import fsspec
        from fsspec.core import url_to_fs
    except ImportError:
        raise InvalidRemote("remotes need fsspec: pip install 'lineage[remote]'") from None
    # a fresh instance, no cached listings: fsspec would otherwise keep the endpoint and
    # credentials of an earlier call, and listings that other writers have changed since
    merged = {"skip_instance_cache": True, "use_listings_cache": False, **remote.options,
              **(options or {})}
    url = remote.url
    protocol = fsspec.core.split_protocol(url)[0]
    try:
        fs, root = url_to_fs(url, **merged)
    except ValueError as exc:
        if "not known" in str(exc) or "protocol" in str(exc).lower():
            known = ", ".join(sorted(p for p in fsspec.available_protocols() if len(p) < 8))
            raise InvalidRemote(f"remote {url!r}: unknown scheme {protocol!r}; fsspec knows "
                                f"{known}") from None
        raise InvalidRemote(f"remote {url!r}: {exc}") from None
    except ImportError as exc:
        raise InvalidRemote(f"remote {url!r}: the {protocol!r} scheme needs a package that is "
                            f"not installed ({exc}); for s3:// pip install 'lineage[remote]'"
                            ) from None
    except TypeError as exc:
        raise InvalidRemote(f"remote {url!r}: bad storage option: {exc}") from None
    return Connection(fs, root.rstrip("/"), str(remote))


@functools.cache
def _transient_types() -> tuple[type[BaseException], ...]:
    """Exception types meaning "the network failed; the same call may work again"."""
    found: list[type[BaseException]] = [ConnectionError, TimeoutError]
    try:
        from botocore import exceptions as boto

        found += [boto.EndpointConnectionError, boto.ConnectionClosedError,
                  boto.ReadTimeoutError, boto.ConnectTimeoutError]
    except ImportError:
        pass
    try:
        import aiohttp

        found.append(aiohttp.ClientConnectionError)
    except ImportError:
        pass
    return tuple(found)


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, FileNotFoundError | FileExistsError | PermissionError):
        return False
    return isinstance(exc, _transient_types())


class Connection:
    """A remote's filesystem and root path; every operation retried and translated."""

    def __init__(self, fs: Any, root: str, label: str) -> None:
        self.fs = fs
        self.root = root
        self.label = label
        self.sleep: Callable[[float], None] = time.sleep
        #: copies of the remote's write-once files (set by a store on disk; see
        #: :mod:`lineage.remotes.cache`): :meth:`cat` fetches only what it lacks
        self.cache: RemoteCache | None = None
        #: path -> what the last listing said of it (size and ETag; ``None``: nothing that
        #: tells one file from its replacement): a copy is used only for the very file listed
        self.listed: dict[str, str | None] = {}

    def path(self, *parts: str) -> str:
        """The full path of ``parts`` under the remote's root."""
        return "/".join([self.root, *parts]) if self.root else "/".join(parts)

    def relative(self, path: str) -> str:
        """``path`` (as the filesystem lists it) relative to the root."""
        stripped = str(self.fs._strip_protocol(path)).rstrip("/")
        root = str(self.fs._strip_protocol(self.root)).rstrip("/") if self.root else ""
        return stripped[len(root):].lstrip("/") if root and stripped.startswith(root) \
            else stripped

    def call(self, what: str, function: Callable[..., T], *args: Any,
             passthrough: tuple[type[BaseException], ...] = (FileNotFoundError, FileExistsError),
             attempts: int = RETRIES, **kwargs: Any) -> T:
        """``function(*args, **kwargs)``, retried on transient network errors.

        ``attempts`` bounds the tries (the library below retries each as well).

        Raises:
            RemoteError: a network error outlasted the retries, or the remote refused (a
                missing bucket, denied credentials, an unreachable endpoint).
            FileNotFoundError, FileExistsError: passed on for the caller to interpret
                (unless ``passthrough`` says otherwise).
        """
        for attempt in range(attempts):
            try:
                return function(*args, **kwargs)
            except passthrough:
                raise
            except LineageError:
                raise
            except Exception as exc:  # noqa: BLE001 - every library error becomes one of ours
                if _is_transient(exc) and attempt + 1 < attempts:
                    self.sleep(_PAUSES[min(attempt, len(_PAUSES) - 1)])
                    continue
                raise self.error(what, exc, attempts=attempt + 1) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def error(self, what: str, exc: BaseException, *, attempts: int = 1) -> RemoteError:
        """One clear error for a failed operation on this remote."""
        name = type(exc).__name__
        text = " ".join(str(exc).split()) or name
        where = f"remote {self.label}: cannot {what}"
        if isinstance(exc, PermissionError) or "AccessDenied" in text or \
                "InvalidAccessKeyId" in text or "SignatureDoesNotMatch" in text:
            return RemoteError(f"{where}: access denied ({text}); check the credentials "
                               "(AWS_PROFILE, AWS_ACCESS_KEY_ID, ~/.aws/credentials)")
        if name in ("NoCredentialsError", "PartialCredentialsError"):
            return RemoteError(f"{where}: no credentials found ({text}); set AWS_PROFILE or "
                               "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or use ~/.aws")
        if _is_transient(exc) or "Could not connect" in text:
            return RemoteError(f"{where}: the endpoint is unreachable after {attempts} "
                               f"attempt(s) ({text}); check the URL, AWS_ENDPOINT_URL and the "
                               "network, then retry (what was sent is kept)")
        if "NoSuchBucket" in text or "bucket does not exist" in text:
            return RemoteError(f"{where}: the bucket does not exist ({text}); create it first")
        if isinstance(exc, FileNotFoundError):
            return RemoteError(f"{where}: {text} is gone (removed by a remote gc since it was "
                               "listed?); retry")
        if isinstance(exc, OSError):
            return RemoteError(f"{where}: {text}")
        return RemoteError(f"{where}: {name}: {text}")

    # -- operations ------------------------------------------------------------------

    def find(self, *parts: str, attempts: int = RETRIES) -> list[str]:
        """Every file under ``parts`` (relative paths, sorted); none if it does not exist."""
        try:
            found = self.call("list files", self.fs.find, self.path(*parts), detail=True,
                              attempts=attempts)
        except FileNotFoundError as exc:
            if "bucket" in str(exc).lower():
                raise self.error("list files", exc) from None
            return []
        listed = {self.relative(path): _identity(info) for path, info in found.items()}
        self.listed.update(listed)
        return sorted(listed)

    def cat(self, paths: list[str]) -> dict[str, bytes]:
        """The contents of the files at ``paths`` (relative), fetched together; write-once
        files the :attr:`cache` holds are not fetched again.

        Raises:
            RemoteError: one of them is missing (removed since it was listed) or unreadable.
        """
        cache = self.cache
        known = {p: identity for p in paths if cacheable(p)
                 and (identity := self.listed.get(p)) is not None} if cache else {}
        kept: dict[str, bytes] = {}
        if cache is not None:
            kept = {p: data for p, identity in known.items()
                    if (data := cache.get(p, identity)) is not None}
        missing = [p for p in paths if p not in kept]
        if missing:
            kept.update(self._fetch(missing))
            if cache is not None:
                for path in missing:
                    if path in known:
                        cache.put(path, known[path], kept[path])
        return {p: kept[p] for p in paths}

    def _fetch(self, paths: list[str]) -> dict[str, bytes]:
        full = [self.path(p) for p in paths]
        found = self.call("read files", self.fs.cat, full, on_error="raise", passthrough=())
        if not isinstance(found, dict):  # one path may come back bare
            found = {full[0]: found}
        by_relative = {self.relative(k): bytes(v) for k, v in found.items()}
        return {p: by_relative[p] for p in paths}

    def cat_ranges(self, path: str, ranges: list[tuple[int, int]]) -> list[bytes]:
        """Byte ranges ``(start, end)`` of one file (relative), fetched together."""
        full = self.path(path)
        parts = self.call("read content", self.fs.cat_ranges, [full] * len(ranges),
                          [start for start, _end in ranges], [end for _start, end in ranges],
                          passthrough=())
        for part in parts:
            if isinstance(part, BaseException):
                raise self.error("read content", part)
        return [bytes(p) for p in parts]

    def size(self, path: str) -> int | None:
        """The size of a file (relative), or ``None`` if it does not exist."""
        try:
            return int(self.call("look up a file", self.fs.size, self.path(path)))
        except FileNotFoundError:
            return None

    def put(self, path: str, data: bytes) -> None:
        """Write a small file (relative), replacing any; readers see the old or the new
        bytes, never part of them (an object store writes objects whole; a local directory
        gets a file written aside and renamed into place)."""
        self._makedirs(path)
        if _is_local(self.fs):
            self.call("write a file", self._place_local, path, data, exclusive=False,
                      passthrough=())
        else:
            self.call("write a file", self.fs.pipe_file, self.path(path), data, passthrough=())

    def create(self, path: str, data: bytes) -> bool:
        """Create a small file only if none exists (compare-and-swap); return whether it did.
        Like :meth:`put`, the file appears whole.

        A retried attempt whose first try did land finds the file: the caller compares
        contents, so that is still correct.
        """
        self._makedirs(path)
        try:
            if _is_local(self.fs):
                return bool(self.call("create a file", self._place_local, path, data,
                                      exclusive=True, passthrough=(FileExistsError,)))
            self.call("create a file", self.fs.pipe_file, self.path(path), data, mode="create",
                      passthrough=(FileExistsError,))
        except FileExistsError:
            return False
        return True

    def _place_local(self, path: str, data: bytes, *, exclusive: bool) -> bool:
        """Write ``data`` under :data:`TEMPORARY` (outside every listed folder), then rename
        it to ``path`` (``exclusive``: hard-link it, which fails if ``path`` exists)."""
        folder = self.path(TEMPORARY)
        os.makedirs(folder, exist_ok=True)
        temporary = f"{folder}/{os.getpid()}-{time.monotonic_ns()}"
        with open(temporary, "wb") as handle:
            handle.write(data)
        try:
            if exclusive:
                os.link(temporary, self.path(path))
            else:
                os.replace(temporary, self.path(path))
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
        return True

    def remove(self, paths: list[str]) -> None:
        """Delete files (relative); missing ones are fine."""
        for path in paths:
            try:
                self.call("delete a file", self.fs.rm_file, self.path(path))
            except FileNotFoundError:
                pass

    def modified(self, path: str) -> float | None:
        """When a file (relative) was last written (epoch seconds), if the remote says."""
        try:
            info = self.call("look up a file", self.fs.info, self.path(path))
        except FileNotFoundError:
            return None
        for key in ("LastModified", "mtime", "created", "last_modified", "updated"):
            value = info.get(key)
            if isinstance(value, int | float):
                return float(value)
            if hasattr(value, "timestamp"):
                return float(value.timestamp())
        return None

    def upload(self, what: str, path: str, write: Callable[[IO[bytes]], None]) -> None:
        """Stream a file (relative) by ``write(handle)``; it appears only if ``write``
        returns. A transient network error restarts the upload (``write`` is called again),
        up to :data:`RETRIES` times; a partial upload is discarded (an S3 multipart upload is
        aborted; a local file is written under a temporary name and renamed at the end).
        """
        self.call(what, self._upload_once, path, write, passthrough=())

    def _upload_once(self, path: str, write: Callable[[IO[bytes]], None]) -> None:
        local = _is_local(self.fs)
        target = self.path(path)
        if local:
            self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        temporary = f"{target}.tmp-{os.getpid()}-{time.monotonic_ns()}" if local else target
        handle = self.fs.open(temporary, "wb", block_size=_WRITE_BLOCK)
        try:
            write(handle)
            handle.close()
            if local:
                self.fs.mv(temporary, target)
        except BaseException:
            _discard(handle)
            if local:
                try:
                    self.fs.rm_file(temporary)
                except OSError:
                    pass
            raise

    def _makedirs(self, path: str) -> None:
        if _is_local(self.fs):
            parent = self.path(path).rsplit("/", 1)[0]
            self.call("create a directory", self.fs.makedirs, parent, exist_ok=True)


def _is_local(fs: Any) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in ("file", "local")


def _discard(handle: Any) -> None:
    """Drop a half-written file: abort an S3 multipart upload, and make sure nothing is
    flushed later (a buffered file flushes when it is garbage-collected)."""
    try:
        discard = getattr(handle, "discard", None)
        if discard is not None:
            discard()
        try:
            handle.closed = True  # a buffered fsspec file: never flushed from here on
        except AttributeError:
            handle.close()  # a real file (written under a temporary name)
    except Exception:  # noqa: BLE001, S110 - best effort while another error propagates
        pass
