"""Medians with their range: the only way a figure leaves this package."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Summary:
    """Median, minimum and maximum of repeated measurements (the values are kept for results.json)."""

    median: float
    low: float
    high: float
    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        if not values:
            raise ValueError("a summary needs at least one measurement")
        ordered = tuple(float(v) for v in values)
        return cls(statistics.median(ordered), min(ordered), max(ordered), ordered)

    @property
    def n(self) -> int:
        return len(self.values)

    def scaled(self, factor: float) -> Summary:
        return Summary(
            self.median * factor, self.low * factor, self.high * factor, tuple(v * factor for v in self.values)
        )

    def text(self, unit: str = "", digits: int = 2) -> str:
        """``1.23 s (1.10–1.40)``; a single measurement or an exact figure shows no range."""
        suffix = f" {unit}" if unit else ""
        median = f"{self.median:.{digits}f}"
        if self.n == 1 or (f"{self.low:.{digits}f}" == median == f"{self.high:.{digits}f}"):
            return f"{median}{suffix}"
        return f"{median}{suffix} ({self.low:.{digits}f}–{self.high:.{digits}f})"

    def to_json(self) -> dict[str, Any]:
        return {"median": self.median, "min": self.low, "max": self.high, "n": self.n, "values": list(self.values)}


def percent(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole else 0.0
