"""Which remotes a store knows: name -> URL and non-secret storage options.

The configuration lives in the store's ``settings`` (``"remotes"``): ``{name: {"url": str,
"options": {key: value}}}``. Adding or removing a remote appends a ``remote`` event. Nothing
that looks like a credential is ever written there: credentials and endpoints come from the
usual places (``AWS_PROFILE``, ``AWS_ENDPOINT_URL``, ``~/.aws``, instance roles, the
``GOOGLE_APPLICATION_CREDENTIALS`` file...) or from storage options given to one ``push``
or ``pull``, which are used for that call and forgotten.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from lineage.errors import InvalidName, InvalidRemote, RemoteNotFound
from lineage.refs.revisions import check_name
from lineage.storage import schema
from lineage.storage.base import ReadTxn, WriteTxn

__all__ = ["Remote", "add_remote", "check_options", "configured", "find_remote",
           "remove_remote"]

_SETTING: Final = "remotes"
#: Option names that hold (or may hold) a credential; matched anywhere in the name.
_SECRET: Final = re.compile(
    r"secret|token|passw|credential|private|signature|sas|(^|_)key$|^key|access_key|"
    r"account_key|auth", re.IGNORECASE)
#: Option names that look secret by the pattern above but never hold one.
_NOT_SECRET: Final = frozenset({"sse_kms_key_id", "kms_key_id"})


@dataclass(frozen=True, slots=True)
class Remote:
    """A remote: its ``name`` (``None`` for a bare URL), ``url`` and non-secret ``options``
    (fsspec storage options, such as ``endpoint_url`` or ``profile``)."""

    name: str | None
    url: str
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: ``{"name", "url", "options"}``."""
        return {"name": self.name, "url": self.url, "options": dict(self.options)}

    def __str__(self) -> str:
        return self.name or self.url


def check_options(options: dict[str, Any], *, persist: bool) -> dict[str, Any]:
    """``options`` checked for a remote; with ``persist`` (to be written into the store),
    refuse any key that looks like a credential, at any depth.

    Raises:
        InvalidRemote: an option is a credential (with ``persist``), or is not a plain value.
    """
    from lineage.core import encoding
    from lineage.errors import UnsupportedValue

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                where = f"{path}.{key}" if path else str(key)
                if persist and _SECRET.search(str(key)) and str(key) not in _NOT_SECRET:
                    raise InvalidRemote(
                        f"storage option {where!r} looks like a credential and is never written "
                        "into the store; give it through the environment or the provider's "
                        "config files (AWS_PROFILE, AWS_ACCESS_KEY_ID, ~/.aws/credentials, "
                        "...) or pass it to one push/pull call as a storage option")
                walk(inner, where)

    walk(options, "")
    try:
        encoding.encode(options)
    except UnsupportedValue as exc:
        raise InvalidRemote(f"storage options must be plain values: {exc}") from None
    return dict(options)


def _check_url(url: str) -> str:
    if not url or not isinstance(url, str) or url != url.strip():
        raise InvalidRemote(f"a remote URL must be non-empty text without surrounding spaces, "
                            f"got {url!r}")
    parts = urlsplit(url)
    if parts.password or (parts.username and parts.scheme not in ("", "file")):
        raise InvalidRemote(f"remote URL {_redacted(url)!r} holds a user name or password; "
                            "give credentials through the environment or config files")
    return url


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.username or parts.password:
        return url.replace(parts.netloc, parts.netloc.rsplit("@", 1)[-1])
    return url


def configured(txn: ReadTxn) -> dict[str, Remote]:
    """The remotes configured in a store, by name."""
    stored = schema.get_setting(txn, _SETTING) or {}
    return {name: Remote(name, str(entry["url"]), dict(entry.get("options") or {}))
            for name, entry in sorted(stored.items())}


def add_remote(txn: WriteTxn, name: str, url: str, options: dict[str, Any], *,
               replace: bool = False) -> Remote:
    """Configure remote ``name`` at ``url`` with non-secret ``options``.

    Raises:
        InvalidName: ``name`` breaks the naming rules, or is taken (without ``replace``).
        InvalidRemote: ``url`` is empty or holds credentials, or an option is a credential.
    """
    check_name(name, "remote name")
    remote = Remote(name, _check_url(url), check_options(options, persist=True))
    stored = dict(schema.get_setting(txn, _SETTING) or {})
    if name in stored and not replace:
        raise InvalidName(f"remote {name!r} exists (at {stored[name]['url']}); remove it first "
                          "or add it with replace=True (--replace)")
    stored[name] = {"url": remote.url, "options": remote.options}
    schema.put_setting(txn, _SETTING, stored)
    schema.append_event(txn, "remote", {"name": name, "url": remote.url, "removed": False})
    return remote


def remove_remote(txn: WriteTxn, name: str) -> Remote:
    """Forget remote ``name`` (nothing on the remote is touched); return what it was.

    Raises:
        RemoteNotFound: no remote of that name.
    """
    remote = find_remote(txn, name)
    stored = dict(schema.get_setting(txn, _SETTING) or {})
    del stored[name]
    schema.put_setting(txn, _SETTING, stored or None)
    schema.append_event(txn, "remote", {"name": name, "url": remote.url, "removed": True})
    return remote


def find_remote(txn: ReadTxn, name_or_url: str | None) -> Remote:
    """The remote a name or URL designates. ``None`` means the default: the only remote
    configured, else the one named ``origin``.

    A string containing ``/``, ``:`` or ``\\`` that is not a configured name is a URL (a
    path or ``scheme://...``), used without being configured.

    Raises:
        RemoteNotFound: the name is not configured, or there is no default.
    """
    remotes = configured(txn)
    if name_or_url is None:
        if len(remotes) == 1:
            return next(iter(remotes.values()))
        if "origin" in remotes:
            return remotes["origin"]
        if not remotes:
            raise RemoteNotFound("no remote is configured; add one with `lineage remote add "
                                 "NAME URL` (store.remote_add) or give a URL")
        raise RemoteNotFound(f"several remotes are configured ({', '.join(remotes)}) and none "
                             "is named 'origin'; say which with --remote NAME")
    found = remotes.get(name_or_url)
    if found is not None:
        return found
    if any(mark in name_or_url for mark in "/:\\") or name_or_url in (".", ".."):
        return Remote(None, _check_url(name_or_url), {})
    known = ", ".join(remotes) or "none"
    raise RemoteNotFound(f"no remote named {name_or_url!r} (configured: {known}); add it with "
                         "`lineage remote add NAME URL`, or give a URL")
