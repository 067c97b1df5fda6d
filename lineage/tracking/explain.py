"""``store.explain(step, ...)``: would a call hit the cache, and if not, what changed.

The nearest earlier call is the successful run of the same step whose recorded call
components (code identity, input identities, params) differ least from this call's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lineage.core import encoding
from lineage.core.records import Run
from lineage.errors import StepDefinitionError
from lineage.tracking import recording
from lineage.tracking.outputs import miss_reason
from lineage.tracking.step import Step

if TYPE_CHECKING:
    from lineage.store.store import Store
    from lineage.tracking.callkey import CallPlan

__all__ = ["Explanation", "explain_call"]


@dataclass(slots=True)
class Explanation:
    """Whether a call would hit the cache and, if not, what differs from the nearest call."""

    step: str
    hit: bool
    run: Run | None = None
    nearest: Run | None = None
    changes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        if self.hit:
            return f"{self.step}: cache hit (run {self.run.digest[:12] if self.run else '?'})"
        if self.nearest is None:
            return f"{self.step}: cache miss: no earlier successful call of this step"
        lines = [f"{self.step}: cache miss; nearest earlier call "
                 f"{self.nearest.digest[:12]} differs in:"]
        lines += [f"  - {change}" for change in self.changes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {"step": self.step, "hit": self.hit,
                "run": self.run.digest if self.run else None,
                "nearest": self.nearest.digest if self.nearest else None,
                "changes": list(self.changes)}


def explain_call(store: Store, step_: Any, *args: Any, **kwargs: Any) -> Explanation:
    """See :meth:`Store.explain`: the same hit test a call makes, without its side effects.

    Raises:
        StepDefinitionError: ``step_`` is not a ``@lineage.step`` function.
    """
    if not isinstance(step_, Step):
        raise StepDefinitionError(f"explain() takes a @lineage.step function, got {step_!r}")
    plan = step_.plan(store, *args, **kwargs)
    recorded = recording.recorded_run(store, plan.key) if step_.cache else None
    if recorded is not None:
        reason = miss_reason(store, recorded, trust=step_.trust)
        if reason is None:
            return Explanation(step_.name, True, run=recorded)
        return Explanation(step_.name, False, nearest=recorded, changes=[reason])
    best: tuple[int, Run, list[str]] | None = None
    for run in store.runs(op=step_.name):
        if run.status != "ok":
            continue
        changes = _differences(plan, run)
        if best is None or len(changes) < best[0]:
            best = (len(changes), run, changes)
    if best is None:
        return Explanation(step_.name, False)
    return Explanation(step_.name, False, nearest=best[1], changes=best[2])


def _differences(plan: CallPlan, run: Run) -> list[str]:
    call = run.meta.get("call", {})
    changes = []
    if call.get("code") != plan.code:
        changes.append("code: the step's source (or version=) changed")
    old_inputs = call.get("inputs", {})
    for name in sorted(set(old_inputs) | set(plan.identities)):
        old, new = old_inputs.get(name), plan.identities.get(name)
        if old != new:
            state = "added" if old is None else "removed" if new is None else "content changed"
            changes.append(f"input {name!r}: {state}")
    for name in sorted(set(run.params) | set(plan.params)):
        old, new = run.params.get(name, "<absent>"), plan.params.get(name, "<absent>")
        if encoding.encode(old) != encoding.encode(new):
            changes.append(f"param {name!r}: {old!r} -> {new!r}")
    return changes
