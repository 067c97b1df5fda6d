"""The static site: every page of :class:`lineage.web.pages.Site` written to a folder.

The folder opens from disk (links are relative, nothing is fetched) and can be zipped and
handed to a reviewer. It is built beside its destination and swapped in whole, so a reader
never sees half a site, and a failed build leaves the previous one in place.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from lineage.errors import PathError
from lineage.web.pages import RUNS_PER_PAGE, Site

__all__ = ["SiteReport", "build_site", "site_paths"]


@dataclass(frozen=True, slots=True)
class SiteReport:
    """What :func:`build_site` wrote: the folder, how many pages and bytes, in how long."""

    directory: str
    pages: int
    bytes: int
    seconds: float

    def to_dict(self) -> dict[str, object]:
        """JSON-safe form."""
        return {"directory": self.directory, "pages": self.pages, "bytes": self.bytes,
                "seconds": round(self.seconds, 3)}


def site_paths(site: Site) -> list[str]:
    """Every page of the site, in the order they are written."""
    store = site.store
    paths = ["index.html", "events.html", "static/site.js", "runs/index.html"]
    runs = store.runs()
    pages = max(1, math.ceil(len(runs) / RUNS_PER_PAGE))
    paths += [f"runs/page-{n}.html" for n in range(2, pages + 1)]
    paths += [f"runs/{r.digest}.html" for r in runs] + [f"graph/{r.digest}.html" for r in runs]
    artifacts = store.artifacts()
    paths += [f"artifacts/{a.digest}.html" for a in artifacts]
    paths += [f"graph/{a.digest}.html" for a in artifacts]
    for name in site.models():
        paths.append(f"models/{name}.html")
        versions = store.versions(name)
        stages = store.stages(name)
        paths += [f"diff/{a.digest}-{b.digest}.html" for a, b in zip(versions, versions[1:],
                                                                     strict=False)]
        held = {a.digest for a in stages.values()}
        paths += [f"reports/{v.digest}.html" for v in versions
                  if v.digest in held and v.kind == "model"]
    return list(dict.fromkeys(paths))


def build_site(site: Site, directory: str | os.PathLike[str]) -> SiteReport:
    """Write every page of ``site`` into ``directory`` (replaced whole when it exists).

    Raises:
        PathError: ``directory`` cannot be written (or is a file).
    """
    started = time.perf_counter()
    target = Path(os.path.abspath(directory))
    if target.exists() and not target.is_dir():
        raise PathError(f"{directory} exists and is not a folder")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as exc:
        raise PathError(f"cannot write the site to {directory}: {exc.strerror or exc}") from None
    written = total = 0
    try:
        for path in site_paths(site):
            response = site.get(path)
            if response.status != 200:
                continue  # a record gone since the list was made: no page, no dead link
            file = staging / path
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(response.body)
            written += 1
            total += len(response.body)
        _swap(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return SiteReport(str(target), written, total, time.perf_counter() - started)


def _swap(staging: Path, target: Path) -> None:
    """Put the freshly built ``staging`` folder where ``target`` is, in one rename."""
    previous = None
    if target.exists():
        previous = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, previous)
    os.replace(staging, target)
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)
