"""Part 4: a seeded trace simulation of pipelines over one shared cache (pure Python).

One commit per pipeline, pipelines one after another. A build is a chain of derivations; a
commit rebuilds its chain from the first derivation it changes. Three strategies see the same
commits (common random numbers) and differ only in scheduling and in when they push:

- ``conventional``: validate, then build, then deploy (stage order); push at the end of a
  successful build (the push sits in ``script``, so a failed build pushes nothing).
- ``greedy-end-push``: validate and build at once (``needs: []``), deploy after both; push at
  the end of a successful build, which still happens when validation fails.
- ``greedy-watch-store``: as greedy, but every derivation is pushed as soon as it is built
  (``attic watch-store``), so a failed build has cached what it built before the failure.
"""

from __future__ import annotations

import dataclasses
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from tools.bench.results import BenchContext, BenchResult, Chart, Table
from tools.bench.stats import Summary

MIB = 1024 * 1024


class Outcome(Enum):
    OK = "ok"
    VALIDATION_FAILS = "validation fails"
    BUILD_FAILS = "build fails"


@dataclass(frozen=True)
class Strategy:
    name: str
    greedy: bool
    watch_store: bool


STRATEGIES = (
    Strategy("conventional", greedy=False, watch_store=False),
    Strategy("greedy-end-push", greedy=True, watch_store=False),
    Strategy("greedy-watch-store", greedy=True, watch_store=True),
)


@dataclass(frozen=True)
class SimulationParams:
    """Every knob of the model; each one is printed next to the results."""

    pipelines: int = 500
    seeds: tuple[int, ...] = (1, 2, 3, 4, 5)
    derivations: int = 30
    derivation_seconds_median: float = 20.0
    derivation_seconds_sigma: float = 0.8
    output_mib_median: float = 40.0
    output_mib_sigma: float = 1.0
    leaf_change_share: float = 0.7
    validation_seconds: float = 120.0
    deploy_seconds: float = 60.0
    validation_failure_rate: float = 0.2
    build_failure_rate: float = 0.1
    failure_point: float | None = None
    bootstrap_seconds: float = 3.0
    upload_mib_per_second: float = 100.0
    download_mib_per_second: float = 200.0
    per_path_seconds: float = 0.2

    def __post_init__(self) -> None:
        problems = []
        if self.pipelines < 1 or self.derivations < 1 or not self.seeds:
            problems.append("pipelines, derivations and seeds must be at least 1")
        for name in ("leaf_change_share", "validation_failure_rate", "build_failure_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name} must be within 0..1 (got {getattr(self, name)})")
        if self.validation_failure_rate + self.build_failure_rate > 1.0:
            problems.append("validation_failure_rate + build_failure_rate must not exceed 1")
        if self.failure_point is not None and not 0.0 <= self.failure_point < 1.0:
            problems.append(f"failure_point must be within 0..1 (exclusive) or None (got {self.failure_point})")
        for name in (
            "derivation_seconds_median",
            "output_mib_median",
            "upload_mib_per_second",
            "download_mib_per_second",
        ):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be positive (got {getattr(self, name)})")
        if problems:
            raise ValueError("; ".join(problems))

    def with_overrides(self, overrides: dict[str, str]) -> SimulationParams:
        """``{"build_failure_rate": "0.3"}`` -> a copy with that field parsed to its type."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        changes: dict[str, Any] = {}
        for key, text in overrides.items():
            if key not in fields:
                raise ValueError(f"unknown simulation parameter {key!r} (known: {', '.join(sorted(fields))})")
            current = getattr(self, key)
            if key == "seeds":
                changes[key] = tuple(int(s) for s in text.split(","))
            elif key == "failure_point":
                changes[key] = None if text.lower() in {"none", "uniform", ""} else float(text)
            elif isinstance(current, int):
                changes[key] = int(text)
            else:
                changes[key] = float(text)
        return dataclasses.replace(self, **changes)

    def assumptions(self) -> list[str]:
        point = (
            "uniformly distributed over the derivations the commit rebuilds"
            if self.failure_point is None
            else f"at {self.failure_point:.0%} of the way through the derivations the commit rebuilds"
        )
        return [
            f"{self.pipelines} pipelines run one after another (no two at once) over one shared cache that "
            f"starts empty and is never garbage-collected during the trace; {len(self.seeds)} seeds "
            f"({', '.join(map(str, self.seeds))}); figures are medians over seeds with min–max.",
            f"A build is a chain of {self.derivations} derivations; derivation build times are log-normal "
            f"(median {self.derivation_seconds_median:g} s, σ {self.derivation_seconds_sigma:g}), output sizes "
            f"log-normal (median {self.output_mib_median:g} MiB, σ {self.output_mib_sigma:g}), fixed per "
            "position for a seed.",
            f"A commit changes one derivation and so rebuilds it and everything after it: "
            f"{self.leaf_change_share:.0%} of commits change only the last one (application code), the rest "
            "one chosen uniformly.",
            f"Each commit fails validation with probability {self.validation_failure_rate:g} or fails its build "
            f"with probability {self.build_failure_rate:g} (never both); a build fails at a derivation "
            f"{point}, half-way through that derivation.",
            "The commit after a failure is its fix: after a build failure it changes the failing derivation "
            "(what was built before it stays valid); after a validation failure it changes the last one.",
            f"Validation takes {self.validation_seconds:g} s, deploy {self.deploy_seconds:g} s; every build "
            f"job spends {self.bootstrap_seconds:g} s fetching the cache client.",
            f"A cache hit costs {self.per_path_seconds:g} s plus its size at {self.download_mib_per_second:g} "
            f"MiB/s; a push costs {self.per_path_seconds:g} s plus its size at "
            f"{self.upload_mib_per_second:g} MiB/s. End-of-build pushes run after the build; watch-store pushes "
            "overlap it and the job waits only for the queue to drain.",
            "Time to feedback: from pipeline start to the first failed job, or to the end of deploy when green. "
            "Compute: the sum of all job durations (a greedy build keeps running after validation fails).",
            "Bytes stored: everything pushed during the trace; GC-reclaimable: stored minus the closure of the "
            "last green pipeline.",
        ]


@dataclass(frozen=True)
class Commit:
    paths: tuple[tuple[int, int], ...]  # (position, version) per derivation of the chain
    outcome: Outcome
    fail_position: int  # only meaningful when the build fails


@dataclass(frozen=True)
class Project:
    seconds: tuple[float, ...]
    sizes: tuple[int, ...]  # bytes per derivation output


def make_project(params: SimulationParams, rng: random.Random) -> Project:
    seconds = tuple(
        params.derivation_seconds_median * rng.lognormvariate(0.0, params.derivation_seconds_sigma)
        for _ in range(params.derivations)
    )
    sizes = tuple(
        int(params.output_mib_median * MIB * rng.lognormvariate(0.0, params.output_mib_sigma))
        for _ in range(params.derivations)
    )
    return Project(seconds, sizes)


def make_trace(params: SimulationParams, rng: random.Random) -> list[Commit]:
    last = params.derivations - 1
    versions = [0] * params.derivations
    next_version = 1
    trace: list[Commit] = []
    previous: Commit | None = None
    for _ in range(params.pipelines):
        if previous is not None and previous.outcome is Outcome.BUILD_FAILS:
            changed = previous.fail_position
        elif previous is not None and previous.outcome is Outcome.VALIDATION_FAILS:
            changed = last  # the fix touches the application's own sources
        else:
            changed = last if rng.random() < params.leaf_change_share else rng.randrange(params.derivations)
        for position in range(changed, params.derivations):
            versions[position] = next_version
        next_version += 1
        draw = rng.random()
        if draw < params.validation_failure_rate:
            outcome = Outcome.VALIDATION_FAILS
        elif draw < params.validation_failure_rate + params.build_failure_rate:
            outcome = Outcome.BUILD_FAILS
        else:
            outcome = Outcome.OK
        point = rng.random() if params.failure_point is None else params.failure_point
        fail_position = min(last, changed + int(point * (params.derivations - changed)))
        previous = Commit(tuple(enumerate(versions)), outcome, fail_position)
        trace.append(previous)
    return trace


@dataclass
class BuildRun:
    seconds: float
    hits: int
    lookups: int
    built: int
    pushed: list[tuple[int, int]]
    failed: bool


def run_build(
    commit: Commit, project: Project, cache: set[tuple[int, int]], watch_store: bool, params: SimulationParams
) -> BuildRun:
    """One build job: substitute what the cache has, build the rest in chain order, push per strategy."""
    clock = params.bootstrap_seconds
    queue_free_at = clock  # watch-store uploads one path at a time, overlapping the build
    hits = lookups = 0
    built: list[tuple[int, int]] = []
    pushed: list[tuple[int, int]] = []
    failed = False
    for path in commit.paths:
        position = path[0]
        lookups += 1
        if path in cache:
            hits += 1
            clock += params.per_path_seconds + project.sizes[position] / (params.download_mib_per_second * MIB)
            continue
        if commit.outcome is Outcome.BUILD_FAILS and position == commit.fail_position:
            clock += project.seconds[position] / 2
            failed = True
            break
        clock += project.seconds[position]
        built.append(path)
        if watch_store:
            start = max(clock, queue_free_at)
            queue_free_at = (
                start + params.per_path_seconds + project.sizes[position] / (params.upload_mib_per_second * MIB)
            )
            pushed.append(path)
    if watch_store:
        clock = max(clock, queue_free_at)  # teardown drains the queue
    elif not failed:
        for path in built:
            clock += params.per_path_seconds + project.sizes[path[0]] / (params.upload_mib_per_second * MIB)
        pushed = list(built)
    cache.update(pushed)
    return BuildRun(clock, hits, lookups, len(built), pushed, failed)


@dataclass
class StrategyTotals:
    compute_seconds: float = 0.0
    feedback_seconds: list[float] = field(default_factory=list)
    green_seconds: list[float] = field(default_factory=list)
    red_seconds: list[float] = field(default_factory=list)  # start to a red pipeline (every job finished)
    red_feedback_seconds: list[float] = field(default_factory=list)  # start to the first failed job
    hits: int = 0
    lookups: int = 0
    built: int = 0
    stored_bytes: int = 0
    speculative_bytes: int = 0  # pushed by pipelines that ended red
    stored_series: list[int] = field(default_factory=list)
    live_bytes: int = 0


def simulate(trace: Sequence[Commit], project: Project, strategy: Strategy, params: SimulationParams) -> StrategyTotals:
    totals = StrategyTotals()
    cache: set[tuple[int, int]] = set()
    v, d = params.validation_seconds, params.deploy_seconds
    for commit in trace:
        validation_fails = commit.outcome is Outcome.VALIDATION_FAILS
        build: BuildRun | None = None
        if strategy.greedy or not validation_fails:
            build = run_build(commit, project, cache, strategy.watch_store, params)
        green = False
        if validation_fails:
            feedback = v
            finished = max(v, build.seconds) if build else v
        elif build is not None and build.failed:
            start = 0.0 if strategy.greedy else v
            feedback = start + build.seconds
            finished = max(v, build.seconds) if strategy.greedy else v + build.seconds
        else:
            assert build is not None
            finished = (max(v, build.seconds) if strategy.greedy else v + build.seconds) + d
            feedback, green = finished, True
        totals.compute_seconds += v + (build.seconds if build else 0.0) + (d if green else 0.0)
        totals.feedback_seconds.append(feedback)
        (totals.green_seconds if green else totals.red_seconds).append(finished)
        if not green:
            totals.red_feedback_seconds.append(feedback)
        if build is not None:
            pushed_bytes = sum(project.sizes[p[0]] for p in build.pushed)
            totals.hits += build.hits
            totals.lookups += build.lookups
            totals.built += build.built
            totals.stored_bytes += pushed_bytes
            if not green:
                totals.speculative_bytes += pushed_bytes
        if green:
            totals.live_bytes = sum(project.sizes[p[0]] for p in commit.paths)
        totals.stored_series.append(totals.stored_bytes)
    return totals


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def metrics(totals: StrategyTotals) -> dict[str, float]:
    return {
        "compute_minutes": totals.compute_seconds / 60,
        "feedback_median_seconds": _median(totals.feedback_seconds),
        "green_median_seconds": _median(totals.green_seconds),
        "red_feedback_median_seconds": _median(totals.red_feedback_seconds),
        "red_pipeline_median_seconds": _median(totals.red_seconds),
        "hit_rate_percent": 100.0 * totals.hits / totals.lookups if totals.lookups else 0.0,
        "derivations_built": float(totals.built),
        "stored_gib": totals.stored_bytes / (1024 * MIB),
        "speculative_gib": totals.speculative_bytes / (1024 * MIB),
        "reclaimable_gib": (totals.stored_bytes - totals.live_bytes) / (1024 * MIB),
    }


def run_seeds(params: SimulationParams) -> tuple[dict[str, dict[str, Summary]], dict[str, list[int]]]:
    """Per strategy, per metric: a summary over seeds; plus the first seed's stored-bytes series."""
    per_strategy: dict[str, dict[str, list[float]]] = {s.name: {} for s in STRATEGIES}
    series: dict[str, list[int]] = {}
    for seed in params.seeds:
        rng = random.Random(seed)  # noqa: S311 — a seeded model, not cryptography
        project = make_project(params, rng)
        trace = make_trace(params, rng)
        for strategy in STRATEGIES:
            totals = simulate(trace, project, strategy, params)
            for key, value in metrics(totals).items():
                per_strategy[strategy.name].setdefault(key, []).append(value)
            if seed == params.seeds[0]:
                series[strategy.name] = totals.stored_series
    summaries = {name: {k: Summary.of(v) for k, v in values.items()} for name, values in per_strategy.items()}
    return summaries, series


COLUMNS = (
    ("compute_minutes", "CI compute (min)", "", 0),
    ("feedback_median_seconds", "median time to feedback (s)", "", 0),
    ("green_median_seconds", "median green pipeline (s)", "", 0),
    ("red_feedback_median_seconds", "red: median time to first failed job (s)", "", 0),
    ("red_pipeline_median_seconds", "red: median time to red pipeline (s)", "", 0),
    ("hit_rate_percent", "cache hit rate (%)", "", 1),
    ("derivations_built", "derivations built", "", 0),
    ("stored_gib", "bytes stored (GiB)", "", 1),
    ("reclaimable_gib", "GC-reclaimable (GiB)", "", 1),
)


def run(context: BenchContext, overrides: dict[str, str] | None = None) -> BenchResult:
    params = SimulationParams()
    if context.quick:
        params = dataclasses.replace(params, pipelines=100, seeds=(1,))
    params = params.with_overrides(overrides or {})
    summaries, series = run_seeds(params)
    rows = tuple(
        (name, *(summaries[name][key].text(unit, digits) for key, _, unit, digits in COLUMNS)) for name in summaries
    )
    table = Table(("strategy", *(title for _, title, _, _ in COLUMNS)), rows)
    conventional, watch = summaries["conventional"], summaries["greedy-watch-store"]
    notes = [
        f"greedy + watch-store vs conventional: compute "
        f"{_change(watch['compute_minutes'].median, conventional['compute_minutes'].median)}, "
        f"median time to feedback "
        f"{_change(watch['feedback_median_seconds'].median, conventional['feedback_median_seconds'].median)}, "
        f"median green pipeline "
        f"{_change(watch['green_median_seconds'].median, conventional['green_median_seconds'].median)}."
    ]
    charts = [
        Chart(_plot_summary(context, summaries), "Trace simulation: the three strategies (median over seeds, min–max)"),
        Chart(_plot_stored(context, series), "Bytes pushed to the cache over the trace (first seed): what GC must own"),
    ]
    data = {
        "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(params).items()},
        "strategies": {name: {k: s.to_json() for k, s in m.items()} for name, m in summaries.items()},
    }
    return BenchResult(
        name="simulation",
        title="Trace simulation: conventional vs greedy, end push vs watch-store",
        method=(
            f"{params.pipelines} simulated pipelines per seed over {len(params.seeds)} seeds, each strategy on "
            "the same commits; pure Python, deterministic for a seed (tools/bench/simulation.py)."
        ),
        tables=[table],
        assumptions=params.assumptions(),
        charts=charts,
        notes=notes,
        data=data,
        quick=context.quick,
    )


def _change(new: float, old: float) -> str:
    if old == 0:
        return "n/a"
    return f"{100.0 * (new - old) / old:+.0f}%"


def _plot_summary(context: BenchContext, summaries: dict[str, dict[str, Summary]]) -> str:
    from tools.bench.charts import bar_panels

    panels = [
        ("compute_minutes", "CI compute (min)"),
        ("feedback_median_seconds", "median time to feedback (s)"),
        ("hit_rate_percent", "cache hit rate (%)"),
        ("stored_gib", "bytes stored (GiB)"),
    ]
    return bar_panels(
        context.out / "simulation-summary.png",
        [(title, {name: summaries[name][key] for name in summaries}) for key, title in panels],
    )


def _plot_stored(context: BenchContext, series: dict[str, list[int]]) -> str:
    from tools.bench.charts import line_chart

    return line_chart(
        context.out / "simulation-stored.png",
        {name: [b / (1024 * MIB) for b in values] for name, values in series.items()},
        xlabel="pipeline",
        ylabel="GiB pushed (cumulative, no GC)",
    )
