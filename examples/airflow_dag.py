"""The same ``@lineage.step`` functions as an Airflow task (TaskFlow API).

Put this file in Airflow's ``dags/`` folder (``pip install apache-airflow``). Each task
opens the team's store (a directory every worker sees, or a worker store that exchanges
with a remote: see README, "Sharing: remotes and clusters") and calls the steps unchanged;
lineage records and memoizes each call, so a cleared and re-run task recomputes nothing
that did not change.
"""

from __future__ import annotations

import os

import pendulum
from airflow.decorators import dag, task

REMOTE = os.environ.get("LINEAGE_REMOTE", "s3://team-bucket/lineage")


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False)
def breast_cancer() -> None:
    @task
    def train_model(limit: int = 400, C: float = 0.5) -> float:  # noqa: N803
        from pipeline_steps import load_data, standardize, train  # the same steps

        from lineage.remotes.executors import through_remote

        with through_remote(REMOTE):  # pull, record here, push what was recorded
            features, labels = load_data(limit)
            scaled = standardize(features)
            return float(train(scaled, labels, C).score(scaled, labels))

    train_model()


breast_cancer()
