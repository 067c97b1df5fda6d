"""Prediction sets: what a model said about which rows, without keeping the rows.

:func:`prediction_table` turns a model's predictions and the inputs they were made from into
one table: per row its id, the fingerprint of its input row (never the raw values unless
asked), the prediction and the score. :func:`prediction_summary` notes, in the artifact's
summary, the model's digest and label, the stages it held at that moment and the input
columns with their types, so that a trace can later say whether a row was in the model's
training data (by fingerprinting the training data the same way).
"""

from __future__ import annotations

import time
from typing import Any

from lineage.core.records import Artifact
from lineage.errors import UnsupportedValue

__all__ = ["prediction_summary", "prediction_table"]


def prediction_table(y_pred: Any, inputs: Any, *, ids: Any = None, y_score: Any = None,
                     keep_inputs: bool = False) -> Any:
    """A DataFrame with ``id``, ``input_fingerprint``, ``prediction`` (and ``score``, and the
    input columns with ``keep_inputs``), one row per prediction.

    Raises:
        UnsupportedValue: lengths differ, ids repeat, or the inputs are not a table.
    """
    import numpy as np
    import pandas as pd

    from lineage.adapters.pandas import row_fingerprints

    frame = _as_frame(inputs)
    n = len(frame)
    predictions = _column(y_pred, n, "y_pred")
    table = pd.DataFrame({"id": _ids(ids, frame), "input_fingerprint": row_fingerprints(frame),
                          "prediction": predictions})
    if y_score is not None:
        table["score"] = np.asarray(_column(y_score, n, "y_score"), dtype=float)
    if table["id"].duplicated().any():
        repeated = table["id"][table["id"].duplicated()].iloc[0]
        raise UnsupportedValue(f"row ids must be unique; {repeated!r} occurs more than once")
    if keep_inputs:
        for column in frame.columns:
            table[f"input.{column}"] = frame[column].to_numpy()
    return table


def prediction_summary(frame_inputs: Any, model: Artifact, stages: list[str]) -> dict[str, Any]:
    """What a trace needs to read back: the model, its stages then, the input schema."""
    frame = _as_frame(frame_inputs)
    return {"model": model.raw_digest,
            "model_label": f"{model.name}@{model.version}" if model.name and model.version
            else model.digest,
            "stages": sorted(stages), "made_at": time.time(),
            "input_columns": [[str(c), str(t)] for c, t in frame.dtypes.items()]}


def _as_frame(inputs: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(inputs, pd.DataFrame):
        return inputs
    if isinstance(inputs, pd.Series):
        return inputs.to_frame()
    array = np.asarray(inputs)
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2:
        raise UnsupportedValue(f"inputs must be a table (a DataFrame or a 2-d array), got "
                               f"{array.ndim} dimensions")
    return pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])


def _column(values: Any, n: int, what: str) -> list[Any]:
    items = values.tolist() if hasattr(values, "tolist") else list(values)
    if len(items) != n:
        raise UnsupportedValue(f"{what} has {len(items)} values but the inputs have {n} rows; "
                               "give one per row")
    return [v.item() if hasattr(v, "item") else v for v in items]


def _ids(ids: Any, frame: Any) -> list[str]:
    if ids is None:
        return [str(v) for v in frame.index.tolist()]
    return [str(v) for v in _column(ids, len(frame), "ids")]
