"""Verbs for the web view: ``site`` (a static, self-contained site) and ``ui`` (served from the
live store, read-only).

``--json`` documents::

    site  {"directory", "pages", "bytes", "seconds"}
"""

from __future__ import annotations

import argparse
import sys
from typing import Final

from lineage.cli.verb import AS_OF, Context, Result, UsageError, Verb, arg, positive

__all__ = ["VERBS"]


def _site(ctx: Context, args: argparse.Namespace) -> Result:
    from lineage.web.build import build_site
    from lineage.web.pages import Site

    report = build_site(Site(ctx.view(args)), args.output)
    return Result(report.to_dict(), f"wrote {report.pages} pages to {report.directory} "
                  f"in {report.seconds:.1f} s; open {report.directory}/index.html")


def _ui(ctx: Context, args: argparse.Namespace) -> Result:
    from lineage.web.pages import Site
    from lineage.web.server import make_server

    if args.json:
        raise UsageError("ui serves pages; it prints no data")
    server = make_server(Site(ctx.view(args)), host=args.host, port=args.port)
    host, port = str(server.server_address[0]), int(server.server_address[1])
    print(f"lineage ui: serving {ctx.path} read-only at http://{host}:{port}/ "
          "(Ctrl-C to stop)", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return Result({}, "")


VERBS: Final[tuple[Verb, ...]] = (
    Verb("site", _site, "write a static, self-contained web site of the store", (
        arg("-o", "--output", required=True, metavar="DIR", help="the folder (replaced whole)"),
        AS_OF)),
    Verb("ui", _ui, "serve the web view of the store, read-only", (
        arg("--port", type=positive, default=8765, metavar="N", help="default 8765"),
        arg("--host", default="127.0.0.1", help="default 127.0.0.1 (this machine only)"),
        AS_OF)),
)
