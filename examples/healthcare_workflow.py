"""A clinical model, two versions, and the question a reviewer asks: what changed?

The workflow (Wisconsin breast cancer data shipped with scikit-learn; positive class =
malignant):

1. A fixed, held-out test set is registered once: ``testset@v1``.
2. ``dataset@v1.0``: the training cohort from site A, with its origin, selection criteria and
   known biases recorded.
3. ``dataset@v1.1``: 12 rows found mislabelled are removed and 60 rows from site B added.
4. Each version is preprocessed and trained through memoized ``@lineage.step`` functions
   inside a tracked run that logs the model and its evaluation (sensitivity, specificity,
   with the tested population) on the same test set. v1.1 also lowers the regularization
   strength ``C`` from 1.0 to 0.3.
5. Each evaluation is broken down by tumour size band (a subgroup a reviewer asks about:
   small lesions are the hard ones), with 95 % Wilson intervals.
6. ``model@v1.0`` goes to production; ``model@v1.1`` then passes the production gate (an
   evaluation on a registered test set, no row shared between that test set and any dataset
   in its lineage, no lint error, sensitivity >= 0.9) and replaces it. The demo asks the
   registry what was in production just before, as of that moment.
7. The production model scores a batch of new patients (``predictions@batch-1``: ids, input
   fingerprints, predictions, scores); one prediction is traced back to the model, the stage
   it held, its training run and data, and whether that patient was in the training data.
8. The recorded lineage is printed, then ``store.diff("model@v1.0", "model@v1.1")``, whose
   Markdown is written to ``out/model_diff.md``, the audit report on ``model@v1.1``
   (``out/report_model_v1.1.html`` and ``.md``): what a reviewer reads without the code, and
   the lineage as W3C PROV-JSON and OpenLineage events (``out/lineage.prov.json``,
   ``out/lineage.openlineage.jsonl``), and a static web site of the store (``out/site/``).

Run it with ``make demo`` (a fresh store in ``examples/.lineage`` each time).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import lineage

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
OUT = HERE / "out"
TARGET = "malignant"


def cohorts() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The test set, the site-A cohort (v1.0) and the revised cohort (v1.1)."""
    frame = load_breast_cancer(as_frame=True).frame
    frame[TARGET] = 1 - frame.pop("target")  # sklearn codes benign as 1; we flag malignancy
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    test = frame.iloc[::4].reset_index(drop=True)  # every 4th patient, held out
    pool = frame.drop(index=frame.index[::4]).reset_index(drop=True)
    v1_0 = pool.iloc[:300].reset_index(drop=True)
    mislabelled = v1_0.index[5:300:25]  # 12 rows a chart review rejected
    site_b = pool.iloc[300:360]
    v1_1 = pd.concat([v1_0.drop(index=mislabelled), site_b]).reset_index(drop=True)
    return test, v1_0, v1_1


@lineage.step
def preprocess(frame: pd.DataFrame) -> pd.DataFrame:
    """Standardize the features of a cohort; keep the label as it is."""
    features = frame.drop(columns=[TARGET])
    scaled = pd.DataFrame(StandardScaler().fit_transform(features), columns=features.columns)
    scaled[TARGET] = frame[TARGET].to_numpy()
    return scaled


@lineage.step
def train(table: pd.DataFrame, C: float, max_iter: int = 2000) -> LogisticRegression:  # noqa: N803
    """Fit an L2-regularized logistic regression on a preprocessed cohort."""
    model = LogisticRegression(C=C, max_iter=max_iter)
    model.fit(table.drop(columns=[TARGET]), table[TARGET])
    return model


def build_version(store: lineage.Store, version: str, C: float, test: pd.DataFrame) -> None:  # noqa: N803
    """Preprocess, train, log and evaluate one model version inside a tracked run."""
    with store.run("train_model", params={"C": C}) as run:
        raw = run.log_input(f"dataset@{version}", name="dataset")
        cohort = store.load(raw)  # a DataFrame: the CSV was added as a dataset
        table = preprocess(cohort)
        model = train(table, C=C)
        run.log_model(model, name="model", version=version,
                      meta={"intended_use": "decision support for biopsy review, not diagnosis"})
        scaler = StandardScaler().fit(cohort.drop(columns=[TARGET]))
        features = scaler.transform(test.drop(columns=[TARGET]))
        scores = model.predict_proba(pd.DataFrame(features, columns=table.columns[:-1]))[:, 1]
        run.log_evaluation(test[TARGET], (scores >= 0.5).astype(int), y_score=scores,
                           dataset="testset@v1", positive_label=1, threshold=0.5,
                           subgroups={"tumour_size": size_bands(test)})


def size_bands(frame: pd.DataFrame) -> list[str]:
    """Tumour size band of each patient, from the mean radius (mm)."""
    return pd.cut(frame["mean_radius"], [0, 12, 15, 100],
                  labels=["small (<12 mm)", "medium (12-15 mm)", "large (>15 mm)"]
                  ).astype(str).tolist()


def score_batch(store: lineage.Store, test: pd.DataFrame) -> None:
    """Score new patients with the production model, then trace one prediction back."""
    batch = test.drop(columns=[TARGET]).iloc[:20]
    with store.run("score_batch", params={"batch": "2026-12-01"}) as run:
        frame = store.load(run.log_input("dataset@v1.1", name="cohort"))
        scaler = StandardScaler().fit(frame.drop(columns=[TARGET]))
        model = store.load("model@production", trust=True)
        features = pd.DataFrame(scaler.transform(batch), columns=batch.columns)
        run.log_predictions(model.predict(features), inputs=batch,
                            ids=[f"patient-{i:03d}" for i in range(len(batch))],
                            y_score=model.predict_proba(features)[:, 1],
                            model="model@production", version="batch-1")
    print("== trace of one prediction ==")
    print("\n".join(f"  {line}" for line in
                    str(store.trace("predictions@batch-1", row="patient-007")).splitlines()))
    print()


def main() -> None:
    """Run the whole workflow and print what changed between the two models."""
    DATA.mkdir(exist_ok=True)
    OUT.mkdir(exist_ok=True)
    test, v1_0, v1_1 = cohorts()
    for frame, name in ((test, "testset.csv"), (v1_0, "train_v1.0.csv"), (v1_1, "train_v1.1.csv")):
        frame.to_csv(DATA / name, index=False)

    store = lineage.open(os.environ.get("LINEAGE_HOME", HERE / ".lineage"))
    store.add(DATA / "testset.csv", name="testset", version="v1", kind="dataset", target=TARGET,
              meta={"origin": "Wisconsin diagnostic breast cancer data, every 4th patient",
                    "selection": "fixed hold-out; never used for training",
                    "biases": "same referral population as the training data"})
    store.add(DATA / "train_v1.0.csv", name="dataset", version="v1.0", kind="dataset",
              target=TARGET,
              meta={"origin": "site A, 2019-2021 biopsies",
                    "selection": "first 300 patients of the training pool",
                    "biases": "single site; referral population enriched for malignancy"})
    store.add(DATA / "train_v1.1.csv", name="dataset", version="v1.1", kind="dataset",
              target=TARGET,
              meta={"origin": "site A plus 60 patients from site B",
                    "selection": "v1.0 minus 12 rows rejected at chart review, plus site B",
                    "preprocessing": "same standardization as v1.0",
                    "biases": "two sites; site B under-represents patients over 70"})

    store.set_policy("production", checks=["evaluated", "independent", "lint"],
                     metrics={"sensitivity": (">=", 0.9)},
                     reason="clinical safety board: sensitivity of at least 0.9")
    build_version(store, "v1.0", C=1.0, test=test)
    store.promote("model@v1.0", "production", reason="first release after review")
    released = time.time()
    build_version(store, "v1.1", C=0.3, test=test)
    print("== production gate for model@v1.1 ==")
    for check in store.check_promotion("model@v1.1", "production"):
        print(f"  {check}")
    store.promote("model@v1.1", "production",
                  reason="higher specificity at equal sensitivity on testset@v1")
    store.tag("model@v1.0", "model_v1.0")
    before = store.as_of(released).resolve("model@production")
    print(f"  model@production was {before.name}@{before.version} before this promotion; "
          f"now {store.resolve('model@production').version}")
    print()
    score_batch(store, test)

    print("== lineage of model@v1.1 ==")
    for record in store.ancestors("model@v1.1"):
        label = getattr(record, "op", None) or (
            f"{record.name}@{record.version}" if record.version else record.name or "")
        print(f"  {record.kind:<12} {label:<28} {record.digest[:12]}")
    print()
    print("== runs ==")
    for run in store.runs(op="train_model"):
        shown = ", ".join(f"{k}={v:.3f}" for k, v in sorted(run.metrics.items()))
        print(f"  {run.digest[:12]} {run.op} C={run.params['C']}: {shown}")
    print()
    print("== would preprocess(dataset@v1.1) run again? ==")
    print(" ", store.explain(preprocess, store.load("dataset@v1.1")))
    print()
    findings = store.lint()
    print("== lint ==")
    print("\n".join(f"  {f.severity} {f.code} {f.label}: {f.message}" for f in findings)
          or "  no findings: every model has data, every metric a test set")
    print()
    difference = store.diff("model@v1.0", "model@v1.1")
    print(difference)
    (OUT / "model_diff.md").write_text(difference.to_markdown())
    print(f"\nMarkdown written to {(OUT / 'model_diff.md').relative_to(HERE)}")
    for suffix, form in (("html", "html"), ("md", "markdown")):
        report = OUT / f"report_model_v1.1.{suffix}"
        report.write_text(store.report("model@v1.1", format=form))
        print(f"Audit report written to {report.relative_to(HERE)}")
    for filename, form in (("lineage.prov.json", "prov-json"),
                           ("lineage.openlineage.jsonl", "openlineage")):
        (OUT / filename).write_text(store.export("model@v1.1", format=form))
        print(f"{form} export written to {(OUT / filename).relative_to(HERE)}")
    from lineage.web.build import build_site
    from lineage.web.pages import Site

    site = build_site(Site(store), OUT / "site")
    print(f"Static site ({site.pages} pages) written to "
          f"{Path(site.directory).relative_to(HERE)}/index.html")
    store.close()


if __name__ == "__main__":
    main()
