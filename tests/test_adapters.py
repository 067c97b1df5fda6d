"""Value adapters: numpy arrays, pandas frames and tabular files, scikit-learn estimators.

Identity properties are checked on the adapters directly (cheap, many examples); storing and
loading go through a real LMDB store.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import lineage
from lineage.adapters import adapter_for_value
from lineage.adapters import sklearn as sklearn_adapter
from lineage.adapters.numpy import NumpyAdapter
from lineage.adapters.pandas import PandasAdapter, summarize_table_file
from lineage.core.encoding import digest_of
from lineage.core.hashing import Digest, digest_bytes
from lineage.errors import UnsupportedValue, UntrustedContentError
from lineage.storage.blobs import read_blob
from lineage.store import Store

NUMPY = NumpyAdapter()
PANDAS = PandasAdapter()


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One real store for property tests (hypothesis re-runs a test body many times)."""
    opened = lineage.open(tmp_path_factory.mktemp("adapters") / "store")
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def cancer() -> pd.DataFrame:
    frame: pd.DataFrame = load_breast_cancer(as_frame=True).frame
    return frame


def identity_of(value: Any) -> Digest:
    """What the store records as ``summary["identity"]`` for a value."""
    return digest_bytes(adapter_for_value(value).key(value))


def blob(store: Store, digest: Digest) -> bytes:
    with store._read() as txn:
        return read_blob(store._backend, txn, digest)


# -- numpy ---------------------------------------------------------------------------------

ARRAY_DTYPES = st.sampled_from(["<i8", "<i4", "<u2", "<f8", "<f4", "?", "<U3", "<M8[s]"])
arrays = ARRAY_DTYPES.flatmap(
    lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=3, max_side=5))
)


def strided_copy(array: np.ndarray) -> np.ndarray:
    """An equal array that is a non-contiguous view into a larger buffer."""
    if array.ndim == 0:
        return array.copy()
    padded = np.zeros(tuple(2 * n for n in array.shape), dtype=array.dtype)
    view = padded[tuple(slice(None, None, 2) for _ in array.shape)]
    view[...] = array
    return view


@given(arrays)
def test_equal_arrays_have_equal_identity_whatever_their_layout(array: np.ndarray) -> None:
    layouts = [array, array.copy(order="F"), strided_copy(array), array.copy(order="C")]
    if array.ndim >= 2:
        layouts.append(np.ascontiguousarray(array.T).T)  # Fortran-ordered via a transpose
    keys = {NUMPY.key(layout) for layout in layouts}
    assert len(keys) == 1
    dumped = NUMPY.dump(layouts[1])
    assert dumped.identity == NUMPY.key(array)
    assert bytes(dumped.data) == bytes(NUMPY.dump(array).data)  # stored in C order


@given(arrays, st.data())
def test_changing_one_element_changes_identity(array: np.ndarray, data: st.DataObject) -> None:
    assume(array.size > 0)
    changed = array.copy()
    raw = changed.reshape(-1).view(np.uint8)
    position = data.draw(st.integers(0, raw.size - 1))
    raw[position] ^= 0x01  # flip one bit
    assert NUMPY.key(changed) != NUMPY.key(array)


@given(arrays)
def test_dtype_and_shape_are_part_of_identity(array: np.ndarray) -> None:
    if array.dtype.kind in "iu":
        other = array.astype("<i2" if array.dtype != np.int16 else "<i4")
        assert NUMPY.key(other) != NUMPY.key(array)
    if array.ndim != 2:
        assert NUMPY.key(array.reshape(1, -1)) != NUMPY.key(array)
    if array.ndim != 1:
        assert NUMPY.key(array.reshape(-1)) != NUMPY.key(array)


def test_array_identity_is_pinned() -> None:
    array = np.arange(6, dtype="<i8").reshape(2, 3)
    assert str(identity_of(array)) == "080b6eca2de02652a7836e57a4b37790"


@given(arrays)
def test_arrays_round_trip_through_the_store(shared_store: Store, array: np.ndarray) -> None:
    artifact = shared_store.add(array.copy(order="F"))
    back = shared_store.load(artifact)
    assert type(back) is np.ndarray
    assert back.dtype == array.dtype and back.shape == array.shape
    assert back.tobytes() == array.tobytes()
    assert artifact.format == "numpy"
    assert artifact.summary["identity"] == identity_of(array)


def test_array_summary_counts_nans_and_skips_them_in_statistics(store: Store) -> None:
    array = np.array([[1.0, np.nan, 3.0], [np.inf, 5.0, np.nan]])
    summary = store.add(array, name="floats").summary
    assert summary["dtype"] == "float64" and summary["shape"] == [2, 3]
    assert summary["nan"] == 2 and summary["inf"] == 1
    assert (summary["min"], summary["max"], summary["mean"]) == (1.0, 5.0, 3.0)
    ints = store.add(np.array([3, -2, 7], dtype=np.int32)).summary
    assert (ints["min"], ints["max"], ints["mean"]) == (-2, 7, pytest.approx(8 / 3))
    assert type(ints["min"]) is int


def test_memory_mapped_arrays_are_stored_as_plain_arrays(store: Store, tmp_path: Path) -> None:
    mapped = np.memmap(tmp_path / "m.dat", dtype="<f4", mode="w+", shape=(4, 3))
    mapped[:] = np.arange(12, dtype="<f4").reshape(4, 3)
    artifact = store.add(mapped, name="mapped")
    back = store.load("mapped")
    assert type(back) is np.ndarray and np.array_equal(back, mapped)
    assert artifact.summary["identity"] == identity_of(np.asarray(mapped).copy())


def test_object_arrays_and_array_subclasses_are_refused(store: Store) -> None:
    with pytest.raises(UnsupportedValue, match="object"):
        store.add(np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(UnsupportedValue, match="MaskedArray"):
        store.add(np.ma.masked_array([1, 2], mask=[0, 1]))
    with pytest.raises(UnsupportedValue, match="numpy.float64"):
        store.add(np.float64(1.5))  # scalars are not arrays: wrap with np.asarray


# -- pandas: identity ------------------------------------------------------------------------

TEXT = st.text(alphabet="abcdefgh", min_size=1, max_size=6)  # no NA spellings, no numbers
ROWS = st.lists(
    st.tuples(
        st.integers(-(2**40), 2**40),
        st.floats(allow_infinity=False, allow_nan=True, width=64),
        st.booleans(),
        TEXT,
    ),
    min_size=1,
    max_size=30,
)


def frame_of(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    ints, floats, bools, texts = zip(*rows, strict=True)
    return pd.DataFrame({"i": list(ints), "f": list(floats), "b": list(bools), "s": list(texts)})


@given(ROWS)
def test_frame_identity_survives_parquet_and_csv(tmp_path_factory: pytest.TempPathFactory,
                                                 rows: list[tuple[Any, ...]]) -> None:
    frame = frame_of(rows)
    folder = tmp_path_factory.mktemp("rt")
    frame.to_parquet(folder / "t.parquet")
    frame.to_csv(folder / "t.csv", index=False)
    from_parquet = pd.read_parquet(folder / "t.parquet")
    assert PANDAS.key(from_parquet) == PANDAS.key(frame)
    for name in ("t.parquet", "t.csv"):
        summary, _attachments = summarize_table_file(folder / name)
        assert summary["identity"] == identity_of(frame), name


@given(ROWS, st.data())
def test_schema_and_row_changes_change_frame_identity(rows: list[tuple[Any, ...]],
                                                     data: st.DataObject) -> None:
    frame = frame_of(rows)
    original = PANDAS.key(frame)
    variants = [
        frame.assign(extra=1),
        frame.drop(columns=[data.draw(st.sampled_from(list(frame.columns)))]),
        frame.astype({"i": "float64"}),
        frame.rename(columns={"s": "text"}),
        pd.concat([frame, frame.iloc[:1]], ignore_index=True),
        frame.iloc[1:].reset_index(drop=True),
        frame.iloc[1:],  # same rows but a non-default index
    ]
    for variant in variants:
        assert PANDAS.key(variant) != original


def test_frame_identity_is_pinned() -> None:
    frame = pd.DataFrame({"a": [1, 2, 3], "b": [0.5, 1.5, float("nan")]})
    assert str(identity_of(frame)) == "c489e3d5c0cba8aeccc0a14e481ea8fc"


def test_a_series_is_not_the_same_value_as_its_one_column_frame() -> None:
    series = pd.Series([1, 2, 3], name="a")
    assert PANDAS.key(series) != PANDAS.key(series.to_frame())


# -- pandas: storage ------------------------------------------------------------------------


@given(ROWS)
def test_frames_round_trip_through_the_store(shared_store: Store,
                                            rows: list[tuple[Any, ...]]) -> None:
    frame = frame_of(rows)
    artifact = shared_store.add(frame)
    assert artifact.format == "pandas-parquet" and artifact.kind == "dataset"
    back = shared_store.load(artifact)
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    assert artifact.summary["identity"] == identity_of(frame) == identity_of(back)


@pytest.mark.parametrize(
    "value",
    [
        pd.DataFrame(np.arange(6).reshape(3, 2)),  # integer column names
        pd.DataFrame({"a": [1, 2, 3]}, index=pd.Index([10, 20, 30], name="id")),
        pd.DataFrame({"c": pd.Categorical(["x", "y", "x"], categories=["y", "x", "z"])}),
        pd.DataFrame({"t": pd.to_datetime(["2024-01-01", None, "2024-03-01"], utc=True)}),
        pd.DataFrame({"n": pd.array([1, None, 3], dtype="Int64")}),
        pd.Series([1.5, 2.5], name="score"),
        pd.Series(["a", "b"], index=[7, 8]),
    ],
    ids=["int-names", "named-index", "categorical", "tz-datetime", "nullable-int",
         "series", "unnamed-series"],
)
def test_frames_parquet_holds_come_back_exactly_without_trust(store: Store, value: Any) -> None:
    artifact = store.add(value)
    assert artifact.format == "pandas-parquet"
    back = store.load(artifact)
    assert type(back) is type(value)
    if isinstance(value, pd.Series):
        pd.testing.assert_series_equal(back, value, check_exact=True)
    else:
        pd.testing.assert_frame_equal(back, value, check_exact=True)
    assert identity_of(back) == artifact.summary["identity"]


def test_frames_parquet_cannot_hold_are_pickled_and_need_trust(store: Store) -> None:
    mixed = pd.DataFrame({"a": [1, "x", 2.5]})
    with pytest.warns(UserWarning, match="pickle"):
        artifact = store.add(mixed, name="mixed")
    assert artifact.format == "pandas-pickle"
    with pytest.raises(UntrustedContentError, match="trust=True"):
        store.load("mixed")
    pd.testing.assert_frame_equal(store.load("mixed", trust=True), mixed)
    assert artifact.summary["identity"] == identity_of(mixed)


def test_dataset_summary_of_breast_cancer(store: Store, cancer: pd.DataFrame) -> None:
    artifact = store.add(cancer, name="cancer", target="target")
    summary = artifact.summary
    assert summary["rows"] == 569
    assert len(summary["columns"]) == 31
    assert summary["columns"][0] == ["mean radius", "float64"]
    assert summary["columns"][-1] == ["target", "int64"]
    assert summary["target"] == "target"
    assert summary["class_distribution"] == {"0": 212, "1": 357}
    assert summary["missing"]["mean radius"] == 0
    radius = summary["stats"]["mean radius"]
    assert radius["min"] == pytest.approx(6.981) and radius["max"] == pytest.approx(28.11)
    assert radius["mean"] == pytest.approx(cancer["mean radius"].mean())
    assert radius["std"] == pytest.approx(cancer["mean radius"].std())
    fingerprints = np.frombuffer(blob(store, summary["row_fingerprints"]), dtype="<u8")
    assert fingerprints.shape == (569,)
    expected = pd.util.hash_pandas_object(cancer, index=False).to_numpy()
    assert np.array_equal(fingerprints, expected)


def test_non_numeric_columns_get_unique_and_top(store: Store) -> None:
    frame = pd.DataFrame({"site": ["a", "b", "a", None], "ok": [True, False, True, True]})
    summary = store.add(frame).summary
    assert summary["stats"]["site"] == {"unique": 2, "top": "a"}
    assert summary["stats"]["ok"] == {"unique": 2, "top": True}
    assert summary["missing"] == {"site": 1, "ok": 0}


def test_table_files_added_as_datasets_match_their_frame(store: Store, tmp_path: Path,
                                                         cancer: pd.DataFrame) -> None:
    frame_artifact = store.add(cancer, target="target")
    cancer.to_csv(tmp_path / "cancer.csv", index=False)
    cancer.to_csv(tmp_path / "cancer.tsv", index=False, sep="\t")
    cancer.to_parquet(tmp_path / "cancer.parquet")
    for name in ("cancer.csv", "cancer.tsv", "cancer.parquet"):
        summary = store.add(tmp_path / name, kind="dataset", target="target").summary
        assert summary["identity"] == frame_artifact.summary["identity"], name
        assert summary["row_fingerprints"] == frame_artifact.summary["row_fingerprints"], name
        assert summary["class_distribution"] == {"0": 212, "1": 357}
        assert summary["rows"] == 569 and summary["filename"] == name


def test_an_unknown_target_column_is_named_with_the_available_columns(store: Store,
                                                                    tmp_path: Path) -> None:
    frame = pd.DataFrame({"age": [1, 2], "label": [0, 1]})
    with pytest.raises(UnsupportedValue, match=r"'diagnosis'.*'age', 'label'"):
        store.add(frame, target="diagnosis")
    frame.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(UnsupportedValue, match=r"'diagnosis'.*'age', 'label'"):
        store.add(tmp_path / "t.csv", kind="dataset", target="diagnosis")
    assert store.names() == []  # nothing was recorded


def test_an_unreadable_table_file_raises_a_typed_error(store: Store, tmp_path: Path) -> None:
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(UnsupportedValue, match="cannot read"):
        store.add(tmp_path / "bad.parquet", kind="dataset")


# -- scikit-learn --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted(cancer: pd.DataFrame) -> LogisticRegression:
    features = cancer.drop(columns="target")
    return LogisticRegression(C=0.5, max_iter=5000).fit(features, cancer["target"])


@pytest.fixture
def no_safe_format(monkeypatch: pytest.MonkeyPatch) -> None:
    """Behave as if the estimator held something "sklearn-state" cannot represent."""
    monkeypatch.setattr(sklearn_adapter, "_safe_bytes", lambda model: None)


def predictions_equal(a: Any, b: Any, frame: pd.DataFrame) -> bool:
    features = frame.drop(columns="target")
    return bool(np.array_equal(a.predict_proba(features), b.predict_proba(features)))


@pytest.mark.usefixtures("no_safe_format")
def test_pickled_models_load_only_with_trust(store: Store, fitted: LogisticRegression,
                                             cancer: pd.DataFrame) -> None:
    artifact = store.add(fitted, name="model")
    assert artifact.format == "sklearn-pickle" and artifact.kind == "model"
    with pytest.raises(UntrustedContentError, match=r"trust=True"):
        store.load("model")
    back = store.load("model", trust=True)
    assert type(back) is LogisticRegression
    assert predictions_equal(back, fitted, cancer)
    assert pickle.dumps(back, protocol=5) == pickle.dumps(fitted, protocol=5)
    assert artifact.summary["identity"] == identity_of(fitted)


def test_forests_are_stored_safely_and_keep_importances(store: Store,
                                                        cancer: pd.DataFrame) -> None:
    forest = RandomForestClassifier(n_estimators=5, random_state=0)
    forest.fit(cancer.drop(columns="target"), cancer["target"])
    artifact = store.add(forest, name="forest")
    assert artifact.format == "sklearn-state"
    assert predictions_equal(store.load("forest"), forest, cancer)  # no trust needed
    importances = artifact.summary["feature_importances"]
    assert list(importances) == list(cancer.columns[:-1])
    assert sum(importances.values()) == pytest.approx(1.0, abs=1e-4)


def test_safe_models_are_deterministic_and_load_without_trust(
    store: Store, fitted: LogisticRegression, cancer: pd.DataFrame
) -> None:
    first = store.add(fitted, name="safe")
    again = store.add(pickle.loads(pickle.dumps(fitted)), name="safe")
    assert first.format == "sklearn-state"
    assert again.digest == first.digest and again.version == first.version  # same bytes
    back = store.load("safe")  # no trust needed
    assert predictions_equal(back, fitted, cancer)
    assert store.add(back, name="safe").digest == first.digest  # loaded, added again


def test_models_stored_as_skops_by_earlier_versions_still_load(
    store: Store, fitted: LogisticRegression, cancer: pd.DataFrame
) -> None:
    skops_io = pytest.importorskip("skops.io")
    summary = sklearn_adapter.model_summary(fitted)
    prepared = store._prepare(skops_io.dumps(fitted), "old", kind="model", format="skops",
                              summary=summary)
    store._commit_added(prepared)
    assert store.resolve("old").format == "skops"  # type: ignore[union-attr]
    assert predictions_equal(store.load("old"), fitted, cancer)


def test_model_summary_records_class_params_and_weights(store: Store,
                                                       fitted: LogisticRegression,
                                                       cancer: pd.DataFrame) -> None:
    summary = store.add(fitted).summary
    names = list(cancer.columns[:-1])
    assert summary["class"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert summary["params"]["C"] == 0.5 and summary["params"]["max_iter"] == 5000
    assert summary["fitted"] is True
    assert summary["n_features_in"] == 30
    assert summary["classes"] == [0, 1]
    assert summary["feature_names"] == names
    assert list(summary["coef"]) == names
    assert summary["coef"]["mean radius"] == pytest.approx(fitted.coef_[0][0], rel=1e-5)
    stored = store.resolve(store.add(fitted).digest)
    assert summary["identity"] == digest_of(["sklearn.state", stored.blob])  # type: ignore


def test_pipeline_summary_names_nested_estimators_by_class(store: Store,
                                                           cancer: pd.DataFrame) -> None:
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(C=2.0))
    pipeline.fit(cancer.drop(columns="target"), cancer["target"])
    summary = store.add(pipeline).summary
    params = summary["params"]
    assert params["logisticregression"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert params["logisticregression__C"] == 2.0
    assert params["steps"][0] == ["standardscaler", "sklearn.preprocessing._data.StandardScaler"]
    assert list(summary["coef"]) == list(cancer.columns[:-1])


def test_unfitted_estimators_are_stored_and_say_so(store: Store) -> None:
    artifact = store.add(LogisticRegression(C=3.0), name="blank")
    assert artifact.summary["fitted"] is False
    assert artifact.summary["classes"] is None and "coef" not in artifact.summary
    back = store.load("blank")
    assert back.get_params()["C"] == 3.0


# -- refusals and import cost ----------------------------------------------------------------


class Opaque:
    """A user type no adapter claims."""


def test_values_without_an_adapter_raise_naming_their_type(store: Store) -> None:
    with pytest.raises(UnsupportedValue, match=r"test_adapters\.Opaque"):
        store.add(Opaque())
    with pytest.raises(UnsupportedValue, match=r"builtins\.object"):
        store.add(object())
    with pytest.raises(UnsupportedValue, match="target"):
        store.add(np.arange(3), target="label")
    assert store.names() == [] and list(store._iter_records()) == []


def test_importing_lineage_imports_no_heavy_library() -> None:
    code = (
        "import sys, lineage; s = lineage.open(':memory:'); s.add({'a': 1}, name='c'); "
        "print(sorted(m for m in ('numpy', 'pandas', 'sklearn', 'pyarrow') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_a_csv_dataset_loads_as_a_dataframe_and_as_a_path_on_request(
    store: Store, tmp_path: Path
) -> None:
    source = tmp_path / "cohort.csv"
    source.write_text("age,label\n30,0\n71,1\n")
    store.add(source, name="cohort", kind="dataset", target="label")
    frame = store.load("cohort")
    assert list(frame.columns) == ["age", "label"]
    assert frame["age"].tolist() == [30, 71]
    assert store.load("cohort", as_path=True).read_text() == source.read_text()
    store.add(source, name="plain")  # not a dataset: a file, so a path
    assert isinstance(store.load("plain"), Path)
