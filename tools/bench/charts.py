"""PNG charts with matplotlib's Agg backend (no display). Each function returns the file name it wrote."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # the Agg backend is chosen above, before pyplot loads
from matplotlib.figure import Figure

from tools.bench.stats import Summary

COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860")


def bar_panels(path: Path, panels: Sequence[tuple[str, dict[str, Summary]]]) -> str:
    """One bar panel per metric: bars are medians, whiskers span min–max."""
    figure, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.6), squeeze=False)
    for axis, (title, values) in zip(axes[0], panels, strict=True):
        names = list(values)
        medians = [values[n].median for n in names]
        below = [values[n].median - values[n].low for n in names]
        above = [values[n].high - values[n].median for n in names]
        axis.bar(range(len(names)), medians, yerr=[below, above], capsize=4, color=COLOURS[: len(names)])
        axis.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
        axis.set_title(title, fontsize=9)
    figure.tight_layout()
    return _save(figure, path)


def line_chart(path: Path, series: dict[str, Sequence[float]], xlabel: str, ylabel: str) -> str:
    figure, axis = plt.subplots(figsize=(7, 3.6))
    for index, (name, values) in enumerate(series.items()):
        axis.plot(range(1, len(values) + 1), values, label=name, color=COLOURS[index % len(COLOURS)])
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return _save(figure, path)


def xy_chart(path: Path, series: dict[str, tuple[Sequence[float], Sequence[Summary]]], xlabel: str, ylabel: str) -> str:
    """Medians against x with min–max whiskers, one line per series."""
    figure, axis = plt.subplots(figsize=(6, 3.6))
    for index, (name, (xs, summaries)) in enumerate(series.items()):
        medians = [s.median for s in summaries]
        errors = [[s.median - s.low for s in summaries], [s.high - s.median for s in summaries]]
        axis.errorbar(xs, medians, yerr=errors, marker="o", capsize=4, label=name, color=COLOURS[index % 6])
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_ylim(bottom=0)
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return _save(figure, path)


@dataclass(frozen=True)
class Bar:
    """One job on a Gantt row: start and end in seconds since the pipeline started."""

    row: str
    label: str
    start: float
    end: float
    kind: str = "job"  # job | overhead | failed


KIND_COLOURS = {"job": "#4c72b0", "overhead": "#937860", "failed": "#c44e52"}


def gantt(path: Path, charts: Sequence[tuple[str, Sequence[Bar]]]) -> str:
    """One Gantt panel per pipeline, on a shared time axis."""
    figure, axes = plt.subplots(len(charts), 1, figsize=(8, 1.0 + 1.1 * len(charts) * 2), sharex=True, squeeze=False)
    for axis, (title, bars) in zip(axes[:, 0], charts, strict=True):
        rows = list(dict.fromkeys(bar.row for bar in bars))
        for bar in bars:
            y = rows.index(bar.row)
            colour = KIND_COLOURS.get(bar.kind, COLOURS[y % len(COLOURS)])
            axis.barh(y, bar.end - bar.start, left=bar.start, color=colour, height=0.6, edgecolor="white")
            axis.text(bar.start + 0.05, y, bar.label, va="center", fontsize=7, color="white")
        axis.set_yticks(range(len(rows)), rows, fontsize=8)
        axis.invert_yaxis()
        axis.set_title(title, fontsize=9)
        axis.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel("seconds since the pipeline started")
    figure.tight_layout()
    return _save(figure, path)


def _save(figure: Figure, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path.name
