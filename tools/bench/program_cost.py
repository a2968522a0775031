"""Part 5: what the program itself costs — `make render` wall time and peak memory per runner-pool count.

Each measurement is a fresh process (as `make render` is): ``python -m tools.render`` on a stack
file made from Pulumi.dev.yaml with ``flywheel:runners`` replaced by N pools. The floor is a fresh
process that only imports the Pulumi SDKs the program imports; what lies above it is our code
(config, components, mocks, render, policies).
"""

from __future__ import annotations

import ast
import itertools
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tools.bench.results import BenchContext, BenchResult, Chart, Table, Target
from tools.bench.stats import Summary

ROOT = Path(__file__).resolve().parents[2]
DEV_STACK = ROOT / "Pulumi.dev.yaml"
POOL_COUNTS = (1, 10, 50, 100)  # 50: a second point far enough from 10 to judge the growth
QUICK_POOL_COUNTS = (1, 10)
ADDED_LIMIT_SECONDS = 0.5
# Where the program's own code lives (scanned for the SDKs it imports).
PROGRAM_SOURCES = ("__main__.py", "components", "policies", "tools/render.py", "tools/mocks.py")


@dataclass(frozen=True)
class Measurement:
    seconds: float
    peak_rss_mib: float
    stdout: str


class MeasurementError(Exception):
    pass


# A small, fresh interpreter starts the measured command and reports the command's own wall time and
# peak RSS. Spawning it straight from this (large) process would not do: on Linux a child's ru_maxrss
# keeps the high-water mark of the memory it was forked or vforked from, i.e. ours.
_LAUNCHER = """
import json, os, resource, sys, time
report, command = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
pid = os.posix_spawnp(command[0], command, os.environ)
_, status = os.waitpid(pid, 0)
seconds = time.perf_counter() - started
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
with open(report, "w") as out:
    json.dump({"seconds": seconds, "peak_kib": peak_kib, "exit": os.waitstatus_to_exitcode(status)}, out)
"""


def measure(command: Sequence[str], cwd: Path = ROOT) -> Measurement:
    """Wall time and peak resident memory of one run of ``command`` in a fresh process."""
    with tempfile.TemporaryDirectory(prefix="flywheel-measure-") as scratch:
        report, out, err = (Path(scratch) / name for name in ("report.json", "stdout", "stderr"))
        with out.open("wb") as stdout, err.open("wb") as stderr:
            subprocess.run(
                [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(report), *command],
                cwd=cwd,
                stdout=stdout,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        stdout_text, stderr_text = out.read_text(errors="replace"), err.read_text(errors="replace")
        try:
            figures = json.loads(report.read_text())
        except (OSError, ValueError):
            raise MeasurementError(f"the measuring launcher failed:\n{stderr_text.strip()}") from None
    if figures["exit"] != 0:
        shown = " ".join(c if len(c) < 200 else c[:40] + "..." for c in command)
        raise MeasurementError(f"{shown} exited with {figures['exit']}:\n{stdout_text.strip()}\n{stderr_text.strip()}")
    return Measurement(figures["seconds"], figures["peak_kib"] / 1024, stdout_text)  # ru_maxrss is KiB on Linux


def sdk_modules(root: Path = ROOT) -> list[str]:
    """Top-level ``pulumi*`` packages the program's sources import (so the floor follows the code)."""
    found: set[str] = set()
    for source in PROGRAM_SOURCES:
        path = root / source
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.exists() else []
        for file in files:
            tree = ast.parse(file.read_text(), filename=str(file))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                found.update(n.split(".")[0] for n in names if n.split(".")[0].startswith("pulumi"))
    return sorted(found)


def stack_with_pools(base: Path, pools: int, destination: Path) -> Path:
    """Pulumi.dev.yaml with ``flywheel:runners`` replaced by ``pools`` pools cycled from the dev ones."""
    document = yaml.safe_load(base.read_text())
    templates = document["config"]["flywheel:runners"]
    generated = []
    for index in range(pools):
        template = templates[index % len(templates)]
        generated.append(
            {**template, "name": f"{template['name']}-{index}", "tags": [*template["tags"], f"pool-{index}"]}
        )
    document["config"]["flywheel:runners"] = generated
    destination.write_text(yaml.safe_dump(document, sort_keys=False))
    return destination


def render_command(stack_file: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "tools.render", "--stack", "dev", "--out", str(out), "--stack-file", str(stack_file)]


def floor_command(modules: Sequence[str]) -> list[str]:
    return [sys.executable, "-c", "import " + ", ".join(modules)]


# Runs a render in-process, then lists every module of the SDK packages that the render loaded.
_LIST_LOADED = """
import json, sys
from tools.render import main
packages, listing, args = set(sys.argv[1].split(",")), sys.argv[2], sys.argv[3:]
if main(args) != 0:
    sys.exit("render failed")
loaded = sorted(name for name in sys.modules if name.split(".")[0] in packages)
open(listing, "w").write(json.dumps(loaded))
"""
_IMPORT_LISTED = "import importlib, json, sys\nfor m in json.load(open(sys.argv[1])): importlib.import_module(m)"


def loaded_sdk_modules(modules: Sequence[str], stack_file: Path, work: Path) -> Path:
    """A JSON file listing every SDK module a render of ``stack_file`` loads (lazy submodules included)."""
    listing = work / "sdk-modules.json"
    render = render_command(stack_file, work / "render-listing")[3:]
    measure([sys.executable, "-c", _LIST_LOADED, ",".join(modules), str(listing), *render])
    return listing


def sdk_floor_command(listing: Path) -> list[str]:
    return [sys.executable, "-c", _IMPORT_LISTED, str(listing)]


def resource_count(stdout: str) -> int:
    match = re.search(r"^\s*(\d+) resources:", stdout, re.MULTILINE)
    return int(match.group(1)) if match else 0


def run(context: BenchContext) -> BenchResult:
    counts = QUICK_POOL_COUNTS if context.quick else POOL_COUNTS
    modules = sdk_modules()
    stack_files = {n: stack_with_pools(DEV_STACK, n, context.work / f"Pulumi.pools-{n}.yaml") for n in counts}
    render_out = context.work / "render"
    listing = loaded_sdk_modules(modules, stack_files[counts[-1]], context.work)
    loaded_count = len(json.loads(listing.read_text()))
    floors = {"bare": floor_command(modules), "sdk": sdk_floor_command(listing)}
    if not context.quick:  # compile .pyc files and warm the page cache before anything counts
        for command in floors.values():
            measure(command)
        measure(render_command(stack_files[counts[-1]], render_out))
    floor: dict[str, list[Measurement]] = {name: [] for name in floors}
    renders: dict[int, list[Measurement]] = {n: [] for n in counts}
    resources: dict[int, int] = {}
    for _ in range(context.repetitions):  # interleaved, so drift hits every variant alike
        for name, command in floors.items():
            floor[name].append(measure(command))
        for n in counts:
            result = measure(render_command(stack_files[n], render_out))
            renders[n].append(result)
            resources[n] = resource_count(result.stdout)

    floor_time = {name: Summary.of([m.seconds for m in runs]) for name, runs in floor.items()}
    floor_rss = {name: Summary.of([m.peak_rss_mib for m in runs]) for name, runs in floor.items()}
    times = {n: Summary.of([m.seconds for m in renders[n]]) for n in counts}
    rss = {n: Summary.of([m.peak_rss_mib for m in renders[n]]) for n in counts}

    def above(n: int, name: str) -> Summary:  # paired with the floor run of the same round
        return Summary.of([r.seconds - f.seconds for r, f in zip(renders[n], floor[name], strict=True)])

    def rss_above(n: int, name: str) -> Summary:
        return Summary.of([r.peak_rss_mib - f.peak_rss_mib for r, f in zip(renders[n], floor[name], strict=True)])

    added = {n: above(n, "sdk") for n in counts}
    above_bare = {n: above(n, "bare") for n in counts}
    floor_labels = {
        "bare": "floor: import " + ", ".join(modules),
        "sdk": f"SDK floor: the {loaded_count} SDK modules a render loads",
    }
    rows = [
        (floor_labels[name], "—", floor_time[name].text("s"), "—", "—", floor_rss[name].text("MiB", 0), "—")
        for name in floors
    ]
    rows += [
        (
            f"make render, {n} pool{'s' if n > 1 else ''}",
            str(resources[n]),
            times[n].text("s"),
            above_bare[n].text("s"),
            added[n].text("s"),
            rss[n].text("MiB", 0),
            rss_above(n, "sdk").text("MiB", 0),
        )
        for n in counts
    ]
    table = Table(
        (
            "variant",
            "resources",
            "wall time",
            "above floor",
            "our code (above SDK floor)",
            "peak RSS",
            "RSS above SDK floor",
        ),
        tuple(rows),
    )
    targets = []
    if 10 in added:
        targets.append(
            Target("our code's time above the SDK floor at 10 pools", added[10].median, ADDED_LIMIT_SECONDS, "s")
        )
    if len(counts) >= 3:
        targets.append(_linearity_target(counts, times))
    notes = [
        "The bare floor imports only the SDK packages' top level; pulumi_kubernetes and pulumi_gitlab load their "
        "resource modules lazily on first use, so the SDK floor (every SDK module the render ends up loading, "
        "imported without running anything of ours) is the one our code is measured against.",
        *_per_pool_notes(counts, times, rss),
    ]
    charts = [
        Chart(
            _chart_time(context, counts, times, floor_time),
            "make render wall time against runner pools, with both import floors",
        )
    ]
    data: dict[str, Any] = {
        "sdk_packages": modules,
        "sdk_modules_loaded": loaded_count,
        "floors": {
            name: {"seconds": floor_time[name].to_json(), "peak_rss_mib": floor_rss[name].to_json()} for name in floors
        },
        "renders": {
            str(n): {
                "resources": resources[n],
                "seconds": times[n].to_json(),
                "above_bare_floor_seconds": above_bare[n].to_json(),
                "above_sdk_floor_seconds": added[n].to_json(),
                "peak_rss_mib": rss[n].to_json(),
            }
            for n in counts
        },
    }
    return BenchResult(
        name="program-cost",
        title="Program cost: make render against runner pools",
        method=(
            f"`python -m tools.render` in a fresh process on Pulumi.dev.yaml with `flywheel:runners` replaced by "
            f"{', '.join(map(str, counts))} pools, {context.repetitions} run(s) each, interleaved with two floors in "
            "fresh processes; peak RSS from the child's rusage (tools/bench/program_cost.py)."
        ),
        tables=[table],
        targets=targets,
        notes=notes,
        charts=charts,
        data=data,
        quick=context.quick,
    )


def _linearity_target(counts: Sequence[int], times: dict[int, Summary]) -> Target:
    # A straight line through the medians at the two counts before the largest, extended to the largest,
    # plus the run-to-run spread at the second of them (one measurement's noise on this machine). The
    # step from 1 to 10 pools is too small to set a slope: it drowns in that noise.
    low, high, large = counts[-3], counts[-2], counts[-1]
    slope = max(0.0, times[high].median - times[low].median) / (high - low)
    limit = times[high].median + slope * (large - high) + (times[high].high - times[high].low)
    return Target(
        f"render time at {large} pools vs the straight line through {low} and {high} pools (+ run spread)",
        times[large].median,
        round(limit, 2),
        "s",
    )


def _per_pool_notes(counts: Sequence[int], times: dict[int, Summary], rss: dict[int, Summary]) -> list[str]:
    notes = []
    for low, high in itertools.pairwise(counts):
        per_pool_ms = 1000 * (times[high].median - times[low].median) / (high - low)
        per_pool_kib = 1024 * (rss[high].median - rss[low].median) / (high - low)
        notes.append(f"{low}→{high} pools: {per_pool_ms:.1f} ms and {per_pool_kib:.0f} KiB peak RSS per added pool")
    return notes


def _chart_time(
    context: BenchContext, counts: Sequence[int], times: dict[int, Summary], floors: dict[str, Summary]
) -> str:
    from tools.bench.charts import xy_chart

    return xy_chart(
        context.out / "program-cost.png",
        {
            "make render": (list(counts), [times[n] for n in counts]),
            "SDK floor (modules a render loads)": (list(counts), [floors["sdk"] for _ in counts]),
            "floor (bare SDK imports)": (list(counts), [floors["bare"] for _ in counts]),
        },
        xlabel="runner pools",
        ylabel="seconds",
    )
