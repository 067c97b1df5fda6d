"""Shared fixtures: a real LMDB store in a temporary directory, and a memory store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

import lineage
from lineage.store import Store

# Two cores in CI: no deadlines (fsync timing varies), modest example counts.
settings.register_profile(
    "ci",
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile("thorough", parent=settings.get_profile("ci"), max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A real LMDB-backed store in a fresh directory."""
    opened = lineage.open(tmp_path / "store")
    yield opened
    opened.close()


@pytest.fixture
def memory_store() -> Iterator[Store]:
    """A store over the in-memory backend (the model used in stateful tests)."""
    opened = lineage.open(":memory:")
    yield opened
    opened.close()


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Per-machine caches (the distribution index) go to a temporary directory, never the
    user's own, in this process and the subprocesses tests start."""
    before = os.environ.get("LINEAGE_CACHE_DIR")
    os.environ["LINEAGE_CACHE_DIR"] = str(tmp_path_factory.mktemp("lineage-cache"))
    yield
    if before is None:
        del os.environ["LINEAGE_CACHE_DIR"]
    else:
        os.environ["LINEAGE_CACHE_DIR"] = before
