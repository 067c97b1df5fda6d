"""The web view: the static site and the read-only server, checked in a real headless
Chromium (pages load, the runs table has a row per run and a column per param, the graph a
node per ancestor, comparing ticked runs works), escaping, relative links, and bad input."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from clinic import add, build_models, frame

import lineage
from lineage.cli import main
from lineage.errors import ServeError
from lineage.store import Store
from lineage.web.build import build_site
from lineage.web.pages import Site
from lineage.web.server import make_server

BROWSER = next((found for name in ("chromium-headless-shell", "chromium", "chromium-browser")
                if (found := shutil.which(name))), None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
needs_browser = pytest.mark.skipif(BROWSER is None,
                                   reason="no headless Chromium (.ci/run installs one)")


@pytest.fixture
def shop(store: Store, tmp_path: Path) -> Store:
    """Two evaluated models, one promoted, a run with a nested step, a documented dataset
    whose notes hold markup."""
    build_models(store, tmp_path)
    store.promote("model@v2", "production", reason="reviewed")
    add(store, tmp_path, "cohort", "v1", frame(range(500, 600), seed=5))
    store.add(b"notes", name="notes", meta={"biases": "<script>alert('x')</script> & <b>"})

    @lineage.step(store=store)
    def scale(table: pd.DataFrame, factor: float) -> pd.DataFrame:
        return table * factor

    with store.run("explore", params={"factor": 2.0, "note": "x" * 80}) as run:
        scale(store.load(run.log_input("cohort@v1")), factor=2.0)
        for step, loss in enumerate((0.9, 0.5, 0.3)):
            run.log_metric("loss", loss, step=step)
    return store


@pytest.fixture
def site(shop: Store, tmp_path: Path) -> Path:
    report = build_site(Site(shop), tmp_path / "site")
    assert report.pages > 10 and Path(report.directory).is_dir()
    return Path(report.directory)


def _dom(page: Path, extra_script: str = "") -> str:
    if extra_script:
        page = page.with_name("probe-" + page.name)
        source = page.with_name(page.name.removeprefix("probe-")).read_text()
        page.write_text(source.replace("</body>", f"<script>{extra_script}</script></body>"))
    done = subprocess.run([str(BROWSER), *FLAGS, f"--user-data-dir={page.parent / '.chrome'}",
                           "--dump-dom", page.as_uri()], capture_output=True, text=True,
                          timeout=120, check=True)
    return done.stdout


def test_every_page_escapes_data_and_links_relatively(site: Path) -> None:
    pages = list(site.rglob("*.html"))
    for page in pages:
        text = page.read_text()
        assert "<script>alert" not in text, page
        assert not re.search(r"\son[a-z]+\s*=", text), page  # no inline event handler
        for href in re.findall(r'(?:href|src)="([^"]*)"', text):
            assert not href.startswith(("/", "http:", "https:", "//")), (page, href)
    notes = next(p for p in (site / "artifacts").glob("*.html") if "notes" in p.read_text())
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &lt;b&gt;" in \
        notes.read_text()


def test_the_site_has_every_page_a_reviewer_follows(shop: Store, site: Path) -> None:
    assert (site / "index.html").is_file() and (site / "static" / "site.js").is_file()
    for run in shop.runs():
        assert (site / "runs" / f"{run.digest}.html").is_file()
    v1, v2 = shop.resolve("model@v1"), shop.resolve("model@v2")
    assert (site / "diff" / f"{v1.digest}-{v2.digest}.html").is_file()
    assert (site / "reports" / f"{v2.digest}.html").is_file()  # promoted: it has a report
    assert not (site / "reports" / f"{v1.digest}.html").exists()
    assert (site / "models" / "model.html").is_file()


@needs_browser
def test_chromium_loads_the_pages_and_the_dom_is_right(shop: Store, site: Path) -> None:
    index = _dom(site / "index.html")
    assert 'href="models/model.html"' in index and "production" in index
    runs = shop.runs()
    table = _dom(site / "runs" / "index.html")
    body = table[table.index("<tbody>"):table.index("</tbody>")]
    assert body.count("<tr ") == len(runs)
    params = sorted({k for r in runs for k in r.params})
    headers = re.findall(r"<th[^>]*>params\.([^<]+)</th>", table)
    assert headers == params
    model = _dom(site / "models" / "model.html")
    assert "audit report" in model and "diff from v1" in model
    v1, v2 = shop.resolve("model@v1"), shop.resolve("model@v2")
    difference = _dom(site / "diff" / f"{v1.digest}-{v2.digest}.html")
    assert "model@v1" in difference and "model@v2" in difference
    report = _dom(site / "reports" / f"{v2.digest}.html")
    assert "Evaluation in context" in report
    graph = _dom(site / "graph" / f"{v2.digest}.html")
    nodes = set(re.findall(r'data-digest="([0-9a-f]{32})"', graph))
    assert nodes == {v2.digest} | {r.digest for r in shop.ancestors("model@v2")}


@needs_browser
def test_comparing_ticked_runs_in_the_browser(shop: Store, site: Path) -> None:
    trains = [r.digest for r in shop.runs(op="train")]
    tick = "".join(f'document.querySelector(\'tr[data-digest="{d}"] input\').checked = true;'
                   for d in trains)
    dom = _dom(site / "runs" / "index.html",
               tick + "document.getElementById('compare-button').click();")
    compare = dom[dom.index('id="compare"'):]
    compare = compare[:compare.index("</table>")]
    assert compare.count("<th>train ") == 2
    assert "metrics sensitivity" in compare and "testset@v1" in compare


@needs_browser
def test_screenshots_of_the_site(site: Path, tmp_path: Path) -> None:
    for page in ("index.html", "runs/index.html", "models/model.html"):
        shot = tmp_path / (page.replace("/", "_") + ".png")
        subprocess.run([str(BROWSER), *FLAGS, f"--user-data-dir={tmp_path / '.chrome'}",
                        "--hide-scrollbars", "--window-size=1200,800",
                        f"--screenshot={shot}", (site / page).as_uri()],
                       capture_output=True, timeout=120, check=True)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


@pytest.fixture
def server(shop: Store) -> Iterator[str]:
    served = make_server(Site(shop), port=0)
    thread = threading.Thread(target=served.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{served.server_address[1]}"
    finally:
        served.shutdown()
        served.server_close()


def _get(url: str, method: str = "GET") -> tuple[int, str]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - loopback
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_the_server_renders_pages_and_refuses_writes(shop: Store, server: str) -> None:
    status, index = _get(server + "/")
    assert status == 200 and "models/model.html" in index
    run = shop.runs()[0]
    assert _get(f"{server}/runs/{run.digest}.html")[0] == 200
    status, missing = _get(f"{server}/runs/{'0' * 32}.html")
    assert status == 404 and "Traceback" not in missing and "no record" in missing
    assert _get(f"{server}/nope.html")[0] == 404
    assert _get(server + "/", method="POST")[0] == 405
    assert _get(server + "/static/site.js")[1].startswith('\n"use strict"')


def test_a_port_in_use_is_a_clear_error(shop: Store, server: str) -> None:
    port = int(server.rsplit(":", 1)[1])
    with pytest.raises(ServeError, match=f"port {port} on 127.0.0.1 is already in use"):
        make_server(Site(shop), port=port)


def test_cli_site_and_its_bad_input(shop: Store, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    home = shop.path
    shop.close()
    out = tmp_path / "bundle"
    assert main(["--store", home, "site", "-o", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["pages"] > 10 and (out / "index.html").is_file()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["--store", home, "site", "-o", str(blocker)]) == 1
    assert capsys.readouterr().err == f"lineage: error: {blocker} exists and is not a folder\n"
    assert main(["--store", home, "site", "-o", str(out), "--as-of", "2001-01-01"]) == 0
    assert "No model is versioned yet" in (out / "index.html").read_text()
