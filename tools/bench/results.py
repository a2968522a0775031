"""What one benchmark hands to the report: tables, targets, assumptions, charts and raw figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Table:
    """A Markdown table: formatted cells (medians with min–max), one row per compared variant."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(f"table row {row!r} has {len(row)} cells; expected {len(self.columns)}")

    def to_json(self) -> dict[str, Any]:
        return {"caption": self.caption, "columns": list(self.columns), "rows": [list(r) for r in self.rows]}


@dataclass(frozen=True)
class Target:
    """A claim with a number: met when the measured median is at most the limit."""

    claim: str
    measured: float
    limit: float
    unit: str

    @property
    def met(self) -> bool:
        return self.measured <= self.limit

    def text(self, judged: bool = True) -> str:
        """``judged`` False for a quick run: one unwarmed run on small inputs proves nothing either way."""
        verdict = ("met" if self.met else "NOT met") if judged else "not judged (quick run)"
        return f"{self.claim}: {self.measured:.2f} {self.unit} (target ≤ {self.limit:g} {self.unit}) — {verdict}"

    def to_json(self) -> dict[str, Any]:
        return {"claim": self.claim, "measured": self.measured, "limit": self.limit, "unit": self.unit, "met": self.met}


@dataclass(frozen=True)
class Chart:
    file: str  # a PNG in the output folder
    caption: str


@dataclass
class BenchResult:
    name: str
    title: str
    method: str  # one paragraph: what ran, how often, on what
    tables: list[Table] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # raw figures for results.json
    quick: bool = False
    seconds: float = 0.0  # how long the benchmark took

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "method": self.method,
            "tables": [t.to_json() for t in self.tables],
            "targets": [t.to_json() for t in self.targets],
            "assumptions": self.assumptions,
            "charts": [{"file": c.file, "caption": c.caption} for c in self.charts],
            "notes": self.notes,
            "data": self.data,
            "quick": self.quick,
            "seconds": self.seconds,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> BenchResult:
        return cls(
            name=value["name"],
            title=value["title"],
            method=value["method"],
            tables=[
                Table(tuple(t["columns"]), tuple(tuple(r) for r in t["rows"]), t.get("caption", ""))
                for t in value.get("tables", [])
            ],
            targets=[Target(t["claim"], t["measured"], t["limit"], t["unit"]) for t in value.get("targets", [])],
            assumptions=list(value.get("assumptions", [])),
            charts=[Chart(c["file"], c["caption"]) for c in value.get("charts", [])],
            notes=list(value.get("notes", [])),
            data=dict(value.get("data", {})),
            quick=bool(value.get("quick", False)),
            seconds=float(value.get("seconds", 0.0)),
        )


@dataclass(frozen=True)
class BenchContext:
    """Where a benchmark writes and how hard it tries (``quick``: fewer runs, smaller inputs)."""

    out: Path  # charts go here
    work: Path  # scratch space, removed afterwards
    quick: bool = False
    runs: int = 5

    @property
    def repetitions(self) -> int:
        return 1 if self.quick else self.runs
