"""A pickle that would run code on load is refused unless trusted: on ``load``, and on a
step's cache hit when another process wrote the store.

Decision: an untrusted hit raises UntrustedContentError; it does not re-execute. Running
the step again would hide that the store holds pickles from someone else and would make
every call silently miss; the error says what to do (``trust=True`` if you trust whoever
writes the store, or ``cache=False``). Outputs a process stored itself load without trust:
their bytes are its own pickles.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from _campaign import python

import lineage
from lineage.errors import UntrustedContentError
from lineage.store import Store

VICTIM = textwrap.dedent('''
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    import lineage

    def double(values):
        return values * 2

    def train(n_estimators: int):  # a function inside: stored as "sklearn-pickle"
        features = np.arange(40).reshape(20, 2) % 7
        return make_pipeline(FunctionTransformer(double), RandomForestClassifier(
            n_estimators=n_estimators, random_state=0)).fit(features, np.arange(20) % 2)

    untrusting = lineage.step(train)
    trusting = lineage.step(train, trust=True)
''')

PLANT = textwrap.dedent('''
    import pathlib, pickle, sys, uuid
    sys.path.insert(0, sys.argv[2])
    import lineage
    from lineage.core.records import Run
    from lineage.storage import schema
    from victim import untrusting

    class Evil:
        def __reduce__(self):
            return (pathlib.Path.write_text, (pathlib.Path(sys.argv[3]), "code ran"))

    store = lineage.open(sys.argv[1])
    model = untrusting(3)             # a legitimate hit for train(3), recorded here
    assert untrusting(3) is not model  # this process stored it: its hit loads
    plan = untrusting.plan(store, 5)  # the key train(5) will look up
    evil = store._prepare(pickle.dumps(Evil()), "evil", kind="model",
                          format="sklearn-pickle")
    run = Run(op="train", id=uuid.uuid4().hex, outputs={"return": evil.artifact.raw_digest},
              params={"n_estimators": 5}, call_key=plan.key,
              meta={"call": {"code": plan.code, "inputs": {}}})
    store._write(lambda txn: (evil.commit(txn), schema.index_record(txn, run)))
    store.close()
''')


@pytest.fixture
def shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Any]:
    """A store another process wrote: a legitimate pickled model for ``train(3)``, a
    planted pickle that runs code for ``train(5)``; the victim module, imported here."""
    (tmp_path / "victim.py").write_text(VICTIM)
    (tmp_path / "plant.py").write_text(PLANT)
    marker = tmp_path / "owned"
    done = python(tmp_path / "plant.py", tmp_path / "store", tmp_path, marker, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    import importlib.util

    spec = importlib.util.spec_from_file_location("victim", tmp_path / "victim.py")
    assert spec is not None and spec.loader is not None
    victim = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(victim)
    monkeypatch.setitem(sys.modules, "victim", victim)  # its pickles name the module
    return tmp_path / "store", marker, victim


def test_a_step_hit_on_another_processs_pickle_is_refused_unless_trusted(
        shared: tuple[Path, Path, Any]) -> None:
    path, marker, victim = shared
    with lineage.open(path) as store:
        with pytest.raises(UntrustedContentError, match="trust=True"):
            victim.untrusting(3)
        explained = store.explain(victim.untrusting, 3)
        assert not explained.hit and "UntrustedContentError" in str(explained)
        assert store.explain(victim.trusting, 3).hit
        model = victim.trusting(3)  # opted in: the legitimate model loads
        assert type(model).__name__ == "Pipeline"
        assert len(store.runs(op="train")) == 2  # neither call ran the step again
        with pytest.raises(UntrustedContentError):
            victim.untrusting(5)
        assert not marker.exists()
        with pytest.raises(UntrustedContentError):
            store.load("evil")
        assert not marker.exists()
        victim.trusting(5)  # what trust=True hands over: the planted code runs
        assert marker.read_text() == "code ran"


def test_a_step_loads_pickles_it_stored_itself_without_trust(store: Store) -> None:
    import pandas as pd

    @lineage.step(store=store)
    def frame(n: int) -> pd.DataFrame:
        return pd.DataFrame({1: list(range(n)), "b": ["x"] * n})  # mixed names: a pickle

    with pytest.warns(UserWarning):
        first = frame(3)
    second = frame(3)
    assert second.equals(first)
    assert store.artifacts(kind="dataset")[0].format == "pandas-pickle"
    with pytest.raises(UntrustedContentError):  # store.load keeps asking for trust
        store.load(store.artifacts(kind="dataset")[0])
