"""Plots for the audit report, as inline SVG (matplotlib, an optional extra).

Each function returns an ``<svg>`` string, or ``None`` when matplotlib is not installed (the
report then shows the same figures as tables only). The SVG is deterministic: the same data
gives the same bytes (no date, a fixed hash salt, text drawn as paths so no font is needed).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["calibration_svg", "importances_svg", "subgroups_svg"]

_INK = "#1f3b57"
_ACCENT = "#c0392b"


def _pyplot() -> Any | None:
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


@contextmanager
def _figure(width: float, height: float) -> Iterator[tuple[Any, Any] | None]:
    plt = _pyplot()
    if plt is None:
        yield None
        return
    import matplotlib

    with matplotlib.rc_context({"svg.hashsalt": "lineage-report", "svg.fonttype": "path",
                                "font.size": 9, "axes.spines.top": False,
                                "axes.spines.right": False}):
        figure, axes = plt.subplots(figsize=(width, height))
        try:
            yield figure, axes
        finally:
            plt.close(figure)


def _svg(figure: Any) -> str:
    buffer = io.StringIO()
    figure.tight_layout()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and doctype: it is inlined


def importances_svg(top: list[list[Any]], source: str) -> str | None:
    """A horizontal bar chart of ``[[feature, value], ...]`` (largest magnitude on top)."""
    if not top:
        return None
    with _figure(6.5, 0.25 * len(top) + 0.9) as drawn:
        if drawn is None:
            return None
        figure, axes = drawn
        names = [str(name) for name, _value in reversed(top)]
        values = [float(value) for _name, value in reversed(top)]
        axes.barh(names, values, color=[_INK if v >= 0 else _ACCENT for v in values])
        axes.axvline(0, color="#888888", linewidth=0.8)
        axes.set_xlabel("coefficient" if source == "coef_" else "importance")
        return _svg(figure)


def subgroups_svg(subgroups: dict[str, dict[str, dict[str, Any]]],
                  metrics: tuple[str, ...] = ("sensitivity", "specificity")) -> str | None:
    """Per-subgroup metrics with their 95 % Wilson intervals as error bars."""
    rows = [(f"{attribute}={value}", stats) for attribute, groups in sorted(subgroups.items())
            for value, stats in sorted(groups.items()) if isinstance(stats, dict)]
    rows = [(label, stats) for label, stats in rows if any(
        isinstance(stats.get(m), int | float) for m in metrics)]
    if not rows:
        return None
    with _figure(6.5, 0.35 * len(rows) + 1.0) as drawn:
        if drawn is None:
            return None
        figure, axes = drawn
        for offset, (metric, colour) in enumerate(zip(metrics, (_INK, _ACCENT), strict=False)):
            ys, xs, low, high = [], [], [], []
            for index, (_label, stats) in enumerate(rows):
                value = stats.get(metric)
                if not isinstance(value, int | float):
                    continue
                interval = (stats.get("intervals") or {}).get(metric) or [value, value]
                ys.append(index + offset * 0.3)
                xs.append(value)
                low.append(value - interval[0])
                high.append(interval[1] - value)
            axes.errorbar(xs, ys, xerr=[low, high], fmt="o", color=colour, capsize=3,
                          label=metric, markersize=4)
        axes.set_yticks([i + 0.15 for i in range(len(rows))],
                        [f"{label} (n={stats.get('n')})" for label, stats in rows])
        axes.set_xlim(0, 1.02)
        axes.invert_yaxis()
        axes.legend(loc="lower left", frameon=False)
        return _svg(figure)


def calibration_svg(table: list[dict[str, Any]]) -> str | None:
    """Observed positive rate against mean predicted probability, with the diagonal."""
    if not table:
        return None
    with _figure(3.6, 3.2) as drawn:
        if drawn is None:
            return None
        figure, axes = drawn
        axes.plot([0, 1], [0, 1], color="#999999", linewidth=0.8, linestyle="--")
        axes.plot([row["mean_score"] for row in table], [row["observed"] for row in table],
                  marker="o", color=_INK)
        axes.set_xlabel("mean predicted probability")
        axes.set_ylabel("observed positive rate")
        axes.set_xlim(0, 1)
        axes.set_ylim(0, 1)
        return _svg(figure)
