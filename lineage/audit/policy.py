"""Promotion policies: what a model must show before it may hold a stage.

A policy belongs to a stage and is kept in the store (so everyone who shares the store gets
the same gate). It names built-in checks to run, metric minimums, a minimum subgroup size and
the stages a model must have held before. Without a stored policy, ``production`` gets the
built-in one (every check on) and other stages none. Policies gate models: promoting an
artifact of another kind (a dataset, a config) is never gated.

Built-in checks:

- ``evaluated``: the model has an evaluation on a registered test set (``name@version``);
- ``independent``: no registered test set it was evaluated on shares a row with any dataset in
  the model's lineage (row fingerprints; GMLP principle 4: training and test data
  independent);
- ``lint``: the model's lineage has no lint error.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from lineage.core.encoding import digest_of
from lineage.core.plain import is_number, jsonable
from lineage.errors import InvalidQuery
from lineage.refs.revisions import check_name
from lineage.storage import schema
from lineage.storage.base import ReadTxn, WriteTxn

__all__ = ["CHECKS", "OPERATORS", "Policy", "load_policy", "policies", "save_policy"]

CHECKS: Final = ("evaluated", "independent", "lint")
OPERATORS: Final = (">=", ">", "<=", "<", "==")
_SETTING: Final = "policies"  # {stage: {"checks", "metrics", "min_subgroup", "after"}}
_DEFAULTS: Final = {"production": CHECKS}


@dataclass(frozen=True, slots=True)
class Policy:
    """What promotion to ``stage`` requires. ``stored`` is false for a built-in default."""

    stage: str
    checks: tuple[str, ...] = ()
    metrics: Mapping[str, tuple[str, float]] = field(default_factory=dict)
    min_subgroup: int | None = None
    after: tuple[str, ...] = ()
    stored: bool = False

    @property
    def empty(self) -> bool:
        """Whether the policy requires nothing (promotion always passes)."""
        return not (self.checks or self.metrics or self.min_subgroup or self.after)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: ``{"stage", "checks", "metrics": {name: [op, value]}, "min_subgroup",
        "after", "stored"}``."""
        return {"stage": self.stage, "checks": list(self.checks),
                "metrics": {k: [op, jsonable(v)] for k, (op, v) in sorted(self.metrics.items())},
                "min_subgroup": self.min_subgroup, "after": list(self.after),
                "stored": self.stored}

    def describe(self) -> list[str]:
        """One line per requirement, for people."""
        lines = [f"check {name}" for name in self.checks]
        lines += [f"metric {name} {op} {value:g}" for name, (op, value) in
                  sorted(self.metrics.items())]
        if self.min_subgroup:
            lines.append(f"every evaluated subgroup has at least {self.min_subgroup} cases")
        lines += [f"held {name} before" for name in self.after]
        return lines or ["nothing (promotion is not gated)"]


def make_policy(stage: str, *, checks: Iterable[str] = (),
                metrics: Mapping[str, Any] | None = None, min_subgroup: int | None = None,
                after: Iterable[str] = ()) -> Policy:
    """A validated policy.

    ``metrics`` maps a metric to ``(operator, number)`` (operators ``>= > <= < ==``) or a
    number (read as ``>=``).

    Raises:
        InvalidQuery: an unknown check or operator, a non-number, a bad subgroup size.
        InvalidName: a stage name breaks the naming rules.
    """
    check_name(stage, "stage")
    chosen = tuple(dict.fromkeys(checks))
    unknown = [c for c in chosen if c not in CHECKS]
    if unknown:
        raise InvalidQuery(f"unknown check(s) {', '.join(map(repr, unknown))}; the checks are "
                           f"{', '.join(CHECKS)}")
    minimums = {str(name): _minimum(str(name), spec) for name, spec in (metrics or {}).items()}
    if min_subgroup is not None and (not isinstance(min_subgroup, int)
                                     or isinstance(min_subgroup, bool) or min_subgroup < 1):
        raise InvalidQuery(f"min_subgroup must be a positive integer, got {min_subgroup!r}")
    stages = tuple(check_name(s, "stage") for s in dict.fromkeys(after))
    if stage in stages:
        raise InvalidQuery(f"a stage cannot require itself: after={list(stages)}")
    return Policy(stage, chosen, minimums, min_subgroup, stages)


def _minimum(name: str, spec: Any) -> tuple[str, float]:
    op, value = (">=", spec) if not isinstance(spec, list | tuple) else (
        spec if len(spec) == 2 else (None, None))
    number = float(value) if is_number(value) else math.nan  # type: ignore[arg-type]
    if op not in OPERATORS or not math.isfinite(number):
        raise InvalidQuery(f"metric {name!r}: expected a number or (operator, number) with an "
                           f"operator among {' '.join(OPERATORS)}, got {spec!r}")
    return str(op), number


def _stored(txn: ReadTxn) -> dict[str, Any]:
    stored = schema.get_setting(txn, _SETTING)
    return stored if isinstance(stored, dict) else {}


def load_policy(txn: ReadTxn, stage: str) -> Policy:
    """The policy of ``stage``: the stored one, else the built-in default."""
    stored = _stored(txn).get(stage)
    if not isinstance(stored, dict):
        return Policy(stage, _DEFAULTS.get(stage, ()))
    policy = make_policy(stage, checks=stored.get("checks", ()), metrics=stored.get("metrics"),
                         min_subgroup=stored.get("min_subgroup"), after=stored.get("after", ()))
    return Policy(policy.stage, policy.checks, policy.metrics, policy.min_subgroup,
                  policy.after, stored=True)


def save_policy(txn: WriteTxn, policy: Policy | None, stage: str, *, reason: str = "") -> None:
    """Store ``policy`` for ``stage`` (``None``: back to the built-in default), with an event."""
    value = None
    table = _stored(txn)
    if policy is not None:
        data = policy.to_dict()
        value = table[stage] = {key: data[key] for key in
                                ("checks", "metrics", "min_subgroup", "after")}
    else:
        table.pop(stage, None)
    schema.put_setting(txn, _SETTING, table or None)
    schema.append_event(txn, "policy", {"stage": stage, "reason": reason,
                                        "policy": None if value is None else digest_of(value)})


def policies(txn: ReadTxn) -> list[Policy]:
    """Every stage's policy that requires something: stored ones and built-in defaults."""
    stages = set(_DEFAULTS) | set(_stored(txn))
    found = [load_policy(txn, stage) for stage in sorted(stages)]
    return [policy for policy in found if not policy.empty]
