"""``lineage ui``: the web view served from the live store, read-only, on 127.0.0.1.

The standard library's threading HTTP server renders each page on request (a store of 100k
runs opens at once: a page reads only what it shows). Only ``GET`` and ``HEAD`` are
answered; anything else is refused with 405, so no request can write. An unknown path or
revision gets a 404 page, and an error inside a page a 500 page — never a traceback.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from lineage.errors import LineageError, ServeError
from lineage.web.layout import esc, page
from lineage.web.pages import Site

__all__ = ["make_server"]

_log = logging.getLogger("lineage.web")


def make_server(site: Site, *, host: str = "127.0.0.1", port: int = 8765,
                ) -> ThreadingHTTPServer:
    """A server for ``site`` bound to ``host:port`` (call ``serve_forever``; port 0 picks a
    free one, see ``server_address``).

    Raises:
        ServeError: the address is in use or cannot be bound.
    """
    handler = _handler(site)
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ServeError(f"port {port} on {host} is already in use; pick another with "
                             "--port (or stop what listens there)") from None
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    server.daemon_threads = True
    return server


def _handler(site: Site) -> Callable[..., BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "lineage-ui"

        def do_GET(self) -> None:  # noqa: N802 - the http.server protocol
            self._answer(send_body=True)

        def do_HEAD(self) -> None:  # noqa: N802
            self._answer(send_body=False)

        def _refuse(self) -> None:
            self._send(405, "text/plain; charset=utf-8",
                       b"the lineage web view is read-only\n", send_body=True)

        do_POST = do_PUT = do_DELETE = do_PATCH = _refuse  # noqa: N815

        def _answer(self, *, send_body: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            try:
                response = site.get(path)
                status, kind, body = response.status, response.content_type, response.body
            except (LineageError, ValueError) as exc:
                status, kind = 500, "text/html; charset=utf-8"
                body = page("Cannot show this page", f"<p>{esc(exc)}</p>", root="/",
                            store=site.store.path).encode()
            self._send(status, kind, body, send_body=send_body)

        def _send(self, status: int, kind: str, body: bytes, *, send_body: bool) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Security-Policy",
                             "default-src 'self'; style-src 'unsafe-inline'; img-src 'self' "
                             "data:; connect-src 'none'")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            _log.info("%s " + format, self.address_string(), *args)

    return Handler
