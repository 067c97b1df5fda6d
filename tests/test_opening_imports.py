"""What opening a store imports: the LMDB backend and the facade, not the record classes,
the encoder or the layers above (they come with the first method that needs them), nor
``dataclasses`` on the way to a first load; and the layout package's names, each resolved
from its part on first use."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import lineage
from lineage.storage import schema

HEAVY_FOR_OPENING = ("dataclasses", "inspect", "msgpack", "lineage.core.records",
                     "lineage.core.encoding", "lineage.refs.registry", "lineage.adapters",
                     "lineage.storage.blobs", "lineage.storage.schema.records")


def _imported_after(code: str, store: Path) -> set[str]:
    """Modules a fresh interpreter has imported once ``code`` ran (``store`` is argv[1])."""
    script = ("import sys\nimport lineage\n" + code +
              "\nprint(' '.join(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", script, str(store)], capture_output=True,
                          text=True, check=True, timeout=120)
    return set(done.stdout.split())


def test_opening_an_existing_store_imports_no_record_class_and_no_encoder(
    tmp_path: Path
) -> None:
    with lineage.open(tmp_path / "store") as store:
        store.add({"a": 1}, name="config")
    opened = _imported_after("store = lineage.open(sys.argv[1])", tmp_path / "store")
    assert "lineage.storage.lmdb" in opened and "lineage.store.store" in opened
    assert opened.isdisjoint(HEAVY_FOR_OPENING), sorted(opened & set(HEAVY_FOR_OPENING))
    loaded = _imported_after("store = lineage.open(sys.argv[1])\n"
                             "assert store.load('config') == {'a': 1}", tmp_path / "store")
    assert {"lineage.core.records", "msgpack"} <= loaded  # they come when first needed
    assert "dataclasses" not in loaded  # records are written out: no inspect, ast, dis


def test_a_new_store_opens_and_begins_its_event_log(tmp_path: Path) -> None:
    opened = _imported_after("store = lineage.open(sys.argv[1])\n"
                             "assert len(store.events()) == 1", tmp_path / "new")
    assert "lineage.storage.events" in opened
    with lineage.open(tmp_path / "new") as store:
        assert [e.action for e in store.events()] == ["start"]


@pytest.mark.parametrize("name", schema.__all__)
def test_every_layout_name_resolves_from_its_part(name: str) -> None:
    part = importlib.import_module(f"lineage.storage.schema.{schema._PART_OF[name]}")
    assert getattr(schema, name) is getattr(part, name)
    assert name in dir(schema)


def test_an_unknown_layout_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'read_recordz'"):
        schema.read_recordz  # noqa: B018


def test_the_names_type_checkers_see_are_the_names_resolved_at_run_time() -> None:
    """The layout package lists each name twice (imports for type checkers, ``_PART_OF``
    for ``__getattr__``): the lists must agree, part by part."""
    tree = ast.parse(Path(schema.__file__).read_text())
    guarded = next(node for node in tree.body if isinstance(node, ast.If)
                   and ast.unparse(node.test) == "TYPE_CHECKING")
    seen = {alias.name: node.module.rsplit(".", 1)[-1] for node in guarded.body
            if isinstance(node, ast.ImportFrom) and node.module for alias in node.names}
    assert seen == schema._PART_OF
