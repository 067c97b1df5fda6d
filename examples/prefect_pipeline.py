"""A ``@lineage.step`` pipeline run unchanged as Prefect tasks.

    pip install prefect
    python examples/prefect_pipeline.py        # twice: the second run executes no step

Prefect schedules, retries and shows the flow; lineage records each step call as a run
(inputs by content, params, code, environment, outputs) and memoizes it, so a retried or
re-run flow recomputes only what changed. The steps are plain functions: the same code
runs without Prefect, in a notebook, or on Dask.
"""

from __future__ import annotations

import os

from pipeline_steps import load_data, standardize, train
from prefect import flow, task

import lineage


@flow(name="breast-cancer")
def pipeline(limit: int = 400, C: float = 0.5) -> float:  # noqa: N803
    features, labels = task(load_data)(limit)
    scaled = task(standardize)(features)
    model = task(train)(scaled, labels, C)
    return float(model.score(scaled, labels))


if __name__ == "__main__":
    store = lineage.open(os.environ.get("LINEAGE_HOME", ".lineage"))
    with store:
        print("accuracy", pipeline())
    store = lineage.open(store.path)
    print(len(store.runs(op="train")), "train run(s) recorded")
