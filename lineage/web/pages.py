"""The pages of the web view, each rendered from the store on request (or once, for the static
site): the index of models, a page per model, artifact and run, the runs table, the lineage
graph, the diff between consecutive versions, the audit report, and the event log.

:class:`Site` maps a path (``runs/<digest>.html``) to a page. Pages use the store's public
methods only, and every value from the store goes through :func:`lineage.web.layout.esc`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

from lineage.core.hashing import Digest
from lineage.core.plain import iso_time, jsonable
from lineage.core.records import Artifact, Run
from lineage.errors import LineageError, RecordTypeError, RevisionNotFound
from lineage.store import Store
from lineage.web.graph import lineage_svg
from lineage.web.layout import esc, fmt, kv, link, page, table, when
from lineage.web.runs import run_page, runs_page, status_html
from lineage.web.static import SCRIPT

__all__ = ["NotFound", "Response", "Site"]

RUNS_PER_PAGE: Final = 200
_DIGEST: Final = r"[0-9a-f]{32}"
_NAME: Final = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,199}"


class NotFound(LookupError):
    """No page at this path."""


@dataclass(frozen=True, slots=True)
class Response:
    """A page: HTTP status, content type and body."""

    status: int
    content_type: str
    body: bytes


class Site:
    """The pages of one store (or of one point-in-time view of it)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        moment = store.moment
        self.moment = iso_time(moment) if moment is not None else None

    def get(self, path: str) -> Response:
        """The page at ``path`` (relative to the site's top); a 404 page when there is none."""
        try:
            return self._route(path.lstrip("/") or "index.html")
        except (NotFound, RevisionNotFound, RecordTypeError) as exc:
            root = self._root(path)
            back = link(root + "index.html", "Back to the models")
            body = page("Not found", f"<p>{esc(exc)}</p><p>{back}</p>", root=root,
                        store=self.store.path, moment=self.moment)
            return Response(404, "text/html; charset=utf-8", body.encode())

    @staticmethod
    def _root(path: str) -> str:
        return "../" * path.lstrip("/").count("/")

    def _html(self, title: str, body: str, root: str) -> Response:
        document = page(title, body, root=root, store=self.store.path, moment=self.moment)
        return Response(200, "text/html; charset=utf-8", document.encode())

    def _route(self, path: str) -> Response:
        if path == "static/site.js":
            return Response(200, "text/javascript; charset=utf-8", SCRIPT.encode())
        if path == "index.html":
            return self._html("Models", self.index(), "")
        if path == "events.html":
            return self._html("Event log", self.events(), "")
        if match := re.fullmatch(r"runs/(?:index|page-(\d+))\.html", path):
            number = int(match.group(1) or 1)
            title, body = runs_page(self.store, number, RUNS_PER_PAGE)
            return self._html(title, body, "../")
        if match := re.fullmatch(rf"runs/({_DIGEST})\.html", path):
            title, body = run_page(self.store, self._record(match.group(1), Run))
            return self._html(title, body, "../")
        if match := re.fullmatch(rf"artifacts/({_DIGEST})\.html", path):
            artifact = self._record(match.group(1), Artifact)
            return self._html(self._label(artifact), self.artifact(artifact), "../")
        if match := re.fullmatch(rf"models/({_NAME})\.html", path):
            return self._html(f"Model {match.group(1)}", self.model(match.group(1)), "../")
        if match := re.fullmatch(rf"graph/({_DIGEST})\.html", path):
            record = self._record(match.group(1), None)
            graph = self.store.graph(record, direction="upstream")
            svg, count = lineage_svg(graph, record.digest, root="../")
            return self._html(f"Lineage of {self._label(record)}",
                              f"<p class=\"muted\">{count} records.</p><figure>{svg}"
                              "</figure>", "../")
        if match := re.fullmatch(rf"diff/({_DIGEST})-({_DIGEST})\.html", path):
            difference = self.store.diff(Digest.from_hex(match.group(1)),
                                         Digest.from_hex(match.group(2)))
            return self._html(f"Diff {difference.a.label} → {difference.b.label}",
                              str(difference._repr_html_()), "../")
        if match := re.fullmatch(rf"reports/({_DIGEST})\.html", path):
            report = self.store.report(Digest.from_hex(match.group(1)))
            return Response(200, "text/html; charset=utf-8", report.encode())
        raise NotFound(f"no page {path!r} in this site")

    def _record(self, digest: str, kind: type | None) -> Any:
        record = self.store.resolve(Digest.from_hex(digest))
        if kind is not None and not isinstance(record, kind):
            raise NotFound(f"{digest} is not a {kind.__name__.lower()}")
        if isinstance(record, Artifact) and record.name:
            version = self.store.describe(record).get("version")
            record = record.with_version(version) if version else record
        return record

    @staticmethod
    def _label(record: Artifact | Run) -> str:
        if isinstance(record, Run):
            return f"Run {record.op} {record.digest[:12]}"
        if record.name and record.version:
            return f"{record.name}@{record.version}"
        return f"{record.kind} {record.digest[:12]}"

    # -- pages --------------------------------------------------------------------------

    def models(self) -> list[str]:
        """Names whose latest version is a model, sorted."""
        return [name for name, latest in self._latest() if latest.kind == "model"]

    def _latest(self) -> list[tuple[str, Artifact]]:
        """Every versioned name with its latest version (one record read per name)."""
        found = []
        for name in self.store.names():
            latest = self.store.resolve(name)
            if isinstance(latest, Artifact):
                found.append((name, latest))
        return found

    def index(self) -> str:
        """Every model with its versions and stages; datasets; the newest runs."""
        latest = self._latest()
        rows = []
        for name, head in latest:
            if head.kind != "model":
                continue
            versions = self.store.versions(name)
            labels = {v.digest: v.version for v in versions}
            stages = self.store.stages(name)
            held = ", ".join(f"{stage} → {labels.get(a.digest) or a.digest[:8]}"
                             for stage, a in sorted(stages.items()))
            rows.append([link(f"models/{name}.html", name), esc(head.version),
                         fmt(len(versions)), esc(held or "—")])
        body = ["<h2>Models</h2>", table(["model", "latest", "versions", "stages"], rows)
                if rows else "<p class=\"muted\">No model is versioned yet.</p>"]
        datasets = [head for _name, head in latest if head.kind == "dataset"]
        if datasets:
            body += ["<h2>Datasets</h2>", table(
                ["dataset", "rows", "origin"],
                [[link(f"artifacts/{d.digest}.html", self._label(d)),
                  fmt(d.summary.get("rows")), esc(d.meta.get("origin", "—"))]
                 for d in datasets])]
        recent = self.store.runs(limit=10)
        if recent:
            body += ["<h2>Newest runs</h2>", table(
                ["run", "op", "status", "started"],
                [[link(f"runs/{r.digest}.html", r.digest[:12]), esc(r.op), status_html(r),
                  esc(when(r.started))] for r in recent]),
                     f"<p>{link('runs/index.html', 'All runs')}</p>"]
        return "\n".join(body)

    def model(self, name: str) -> str:
        """A model's versions, stages, evaluations, history, diffs, graphs and reports."""
        try:
            versions = self.store.versions(name)
        except LineageError:
            versions = []
        if not versions or not any(v.kind == "model" for v in versions):
            raise NotFound(f"no model named {name!r}")
        stages = self.store.stages(name)
        rows = []
        for index, version in enumerate(versions):
            held = [s for s, a in stages.items() if a == version]
            links = [link(f"../graph/{version.digest}.html", "lineage")]
            if index:
                links.append(link(f"../diff/{versions[index - 1].digest}-{version.digest}.html",
                                  f"diff from {versions[index - 1].version}"))
            if held and version.kind == "model":
                links.append(link(f"../reports/{version.digest}.html", "audit report"))
            rows.append([link(f"../artifacts/{version.digest}.html", version.version),
                         f"<span class=\"digest\">{esc(version.digest[:12])}</span>",
                         " ".join(f"<span class=\"badge stage\">{esc(s)}</span>"
                                  for s in sorted(held)) or "—", " · ".join(links)])
        history = self.store.log(name)
        return "\n".join([
            "<h2>Versions</h2>", table(["version", "digest", "stages", "see"], rows),
            "<h2>Registry history</h2>", _history_table(history)])

    def artifact(self, artifact: Artifact) -> str:
        """An artifact's summary, documentation, importances, versions and users."""
        from lineage.audit.plots import importances_svg

        data = self.store.describe(artifact)
        facts = [("kind", esc(artifact.kind)), ("digest", f"<code>{esc(artifact.digest)}</code>"),
                 ("format", esc(artifact.format)), ("size", esc(fmt(artifact.size)) + " bytes")]
        summary = artifact.summary
        for key in ("rows", "class", "task", "filename"):
            if key in summary:
                facts.append((key, esc(fmt(summary[key]))))
        facts += [(f"meta: {k}", esc(jsonable(v))) for k, v in sorted(artifact.meta.items())]
        body = [kv(facts), f"<p>{link(f'../graph/{artifact.digest}.html', 'lineage graph')}</p>"]
        if summary.get("columns"):
            body += ["<h2>Columns</h2>", table(["column", "type", "missing"], [
                [esc(c), esc(t), fmt((summary.get("missing") or {}).get(c))]
                for c, t in summary["columns"]])]
        if summary.get("class_distribution"):
            body += ["<h2>Class balance</h2>", table(["class", "rows"], [
                [esc(k), fmt(v)] for k, v in sorted(summary["class_distribution"].items())])]
        values = summary.get("feature_importances") or summary.get("coef")
        if isinstance(values, dict) and values:
            top = sorted(values.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[:15]
            svg = importances_svg([[k, v] for k, v in top],
                                  "coef_" if "coef" in summary else "feature_importances_")
            body += ["<h2>Feature importances</h2>", f"<figure>{svg}</figure>" if svg else "",
                     table(["feature", "value"], [[esc(k), fmt(v)] for k, v in top])]
        if summary.get("params") and artifact.kind == "model":
            body += ["<h2>Hyperparameters</h2>", kv(
                (k, esc(jsonable(v))) for k, v in sorted(summary["params"].items()))]
        if data.get("versions"):
            body += ["<h2>Versions of " + esc(artifact.name) + "</h2>", table(
                ["version", "digest", "time"],
                [[link(f"{v['digest']}.html", v["version"]), esc(v["digest"][:12]),
                  esc(v["time"])] for v in data["versions"]])]
        users = self.store.runs(used=artifact)
        makers = self.store.runs(produced=artifact)
        for title, runs in (("Made by", makers), ("Used by", users)):
            if runs:
                body += [f"<h2>{title}</h2>", table(["run", "op", "status", "started"], [
                    [link(f"../runs/{r.digest}.html", r.digest[:12]), esc(r.op), status_html(r),
                     esc(when(r.started))] for r in runs[:50]])]
        if artifact.name and artifact.version:
            body += ["<h2>Registry history</h2>", _history_table(self.store.log(artifact.name))]
        return "\n".join(body)

    def events(self) -> str:
        """The newest events of the tamper-evident log."""
        found = self.store.events()[-500:]
        rows = [[fmt(e.seq), esc(iso_time(e.time)), esc(e.user), esc(e.action),
                 esc(json.dumps(jsonable(e.details), sort_keys=True)[:160]),
                 f"<span class=\"digest\">{esc(e.hash[:16])}</span>"] for e in reversed(found)]
        head = found[-1].hash if found else "—"
        return (f"<p>Head (SHA-256): <code>{esc(head)}</code></p>"
                + table(["#", "time", "user", "action", "details", "hash"], rows))


def _history_table(entries: list[Any]) -> str:
    rows = [[esc(iso_time(e.time)), esc(e.user), esc(f"{e.ref} {e.key}"),
             f"<span class=\"digest\">{esc(e.target.hex()[:12] if e.target else '—')}</span>",
             esc(e.reason or ""), esc("; ".join(e.skipped))] for e in reversed(entries)]
    return table(["time", "user", "move", "target", "reason", "checks overridden"], rows)
