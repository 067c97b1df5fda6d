"""The audit report: every section present, byte-identical for the same store state,
self-contained (nothing fetched), user data escaped, opened in a real headless Chromium."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from clinic import add, build_models, frame, train

from lineage.cli import main
from lineage.errors import InvalidQuery, RecordTypeError
from lineage.store import Store

SECTIONS = ["Model identity and intended use", "Data", "Training set-up",
            "Evaluation in context", "Feature importances",
            "What changed from the previous version", "Registry history",
            "Lint findings in the lineage", "Integrity"]


@pytest.fixture
def reviewed(store: Store, tmp_path: Path) -> Store:
    build_models(store, tmp_path)
    store.promote("model@v1", "production", reason="first release")
    store.promote("model@v2", "production", reason="better", force=False)
    return store


def _browser() -> str | None:
    for name in ("chromium-headless-shell", "chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def test_every_section_is_present_in_both_formats(reviewed: Store) -> None:
    page = reviewed.report("model@v2")
    text = reviewed.report("model@v2", format="markdown")
    for number, title in enumerate(SECTIONS, start=1):
        assert f"<h2>{number}. {title}</h2>" in page
        assert f"## {number}. {title}" in text
    assert "testset@v1" in text and "training input" in text
    assert "sensitivity" in text and "Wilson" in text
    assert "model@v1" in text  # the change from the previous version
    assert "first release" in text and "better" in text  # registry history


def test_the_same_state_gives_byte_identical_reports(reviewed: Store) -> None:
    first = reviewed.report("model@v2")
    assert reviewed.report("model@v2") == first
    assert reviewed.report("model@v2", format="markdown") == reviewed.report(
        "model@v2", format="markdown")
    reviewed.tag("model@v2", "best")  # the state changes: so does the report
    assert reviewed.report("model@v2") != first


def test_the_report_ends_with_the_sha256_of_its_content(reviewed: Store) -> None:
    for form in ("html", "markdown"):
        document = reviewed.report("model@v2", format=form)
        match = re.search(r"above this line: (?:<code>|`)?([0-9a-f]{64})", document)
        assert match is not None
        cut = "<footer>" if form == "html" else "\n---\nSHA-256"
        body = document[:document.rindex(cut)]
        assert hashlib.sha256(body.encode()).hexdigest() == match.group(1)


def test_the_html_is_self_contained(reviewed: Store) -> None:
    page = reviewed.report("model@v2")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "@import" not in page
    assert not re.search(r"url\((?!#)", page)  # only references inside the inlined plots
    assert "@media print" in page


def test_user_data_is_escaped(store: Store, tmp_path: Path) -> None:
    add(store, tmp_path, "testset", "v1", frame(range(0, 100), seed=1))
    path = tmp_path / "evil.csv"
    frame(range(100, 300), seed=2).to_csv(path, index=False)
    store.add(path, name="dataset", version="v1", kind="dataset", target="y",
              meta={"origin": "<script>alert('origin')</script>", "biases": "a < b & c"})
    train(store, "v1", "dataset@v1")
    page = store.report("model@v1")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#x27;origin&#x27;)&lt;/script&gt;" in page
    assert "a &lt; b &amp; c" in page


def test_a_report_as_of_a_moment_shows_that_moment(reviewed: Store) -> None:
    before = [e for e in reviewed.events() if e.action == "ref" and
              e.details.get("key") == "production"][1].time - 1e-3
    page = reviewed.as_of(before).report("model@v2", format="markdown")
    assert "As the store stood at" in page
    assert "better" not in page  # the second promotion had not happened


def test_reports_are_for_models_only(reviewed: Store) -> None:
    with pytest.raises(RecordTypeError, match="not a model"):
        reviewed.report("dataset@v1")
    with pytest.raises(InvalidQuery, match="format"):
        reviewed.report("model@v2", format="pdf")


def test_cli_report_writes_atomically_and_prints_json(reviewed: Store, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    home = reviewed.path
    reviewed.close()
    out = tmp_path / "report.html"
    assert main(["--store", home, "report", "model@v2", "-o", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["path"] == str(out) and data["format"] == "html"
    assert hashlib.sha256(out.read_bytes()).hexdigest() == data["sha256"]
    assert not list(tmp_path.glob(".report.html.*"))  # no temporary file left
    assert main(["--store", home, "report", "model@v2", "--markdown"]) == 0
    assert capsys.readouterr().out.startswith("# Audit report: model@v2")
    assert main(["--store", home, "report", "dataset@v1"]) == 1
    assert "not a model" in capsys.readouterr().err
    assert main(["--store", home, "report", "model@v2", "-o", str(tmp_path / "no" / "x")]) == 1
    assert capsys.readouterr().err.startswith("lineage: error: cannot write")


@pytest.mark.skipif(_browser() is None, reason="no headless Chromium (.ci/run installs one)")
def test_the_report_renders_in_headless_chromium(reviewed: Store, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(reviewed.report("model@v2"))
    shot = tmp_path / "report.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([str(_browser()), *flags, "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert dom.count("<section>") == len(SECTIONS)
    assert ("<svg" in dom) == (importlib.util.find_spec("matplotlib") is not None)
    subprocess.run([str(_browser()), *flags, "--hide-scrollbars", "--window-size=1100,2000",
                    f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (1100, 2000)
