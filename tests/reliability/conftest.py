"""The reliability campaign: each test has a quick form (``make test``) and a full size
(``make stress``, or ``LINEAGE_STRESS=1``).

Sizes come from ``_campaign.size``; figures a test wants in the campaign's table go through the
``figures`` fixture, which appends them as one JSON line to the file named by
``LINEAGE_STRESS_FIGURES`` (set by ``tests/reliability/campaign.py``), with the test's
duration.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from _campaign import STRESS


class Figures(dict[str, Any]):
    """What a test measured, for the campaign's table (``figures["rounds"] = 200``)."""


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[Figures]:
    found = Figures()
    started = time.monotonic()
    yield found
    target = os.environ.get("LINEAGE_STRESS_FIGURES")
    if target:
        row = {"test": request.node.name, "module": request.node.module.__name__,
               "stress": STRESS, "seconds": round(time.monotonic() - started, 1), **found}
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row, default=str) + "\n")
