"""results.json, results.md and the README's Performance section, all generated from the same results.

The README is changed only between its ``<!-- bench:start -->`` and ``<!-- bench:end -->`` markers;
everything outside them is left byte for byte as it was.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tools.bench.results import BenchResult

START_MARKER = "<!-- bench:start -->"
END_MARKER = "<!-- bench:end -->"
COMMAND = "make bench"


class ReadmeMarkersError(Exception):
    """The README lacks a usable pair of bench markers: nothing was written."""


def load_previous(path: Path, machine: dict[str, Any]) -> dict[str, BenchResult]:
    """Results of an earlier run in the same folder on this same machine (so ``--only`` keeps the others)."""
    try:
        document = json.loads(path.read_text())
        if document["machine"] != machine:
            return {}
        return {name: BenchResult.from_json(value) for name, value in document["benchmarks"].items()}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def results_document(
    results: Sequence[BenchResult], machine: dict[str, Any], generated: str, order: Sequence[str]
) -> dict[str, Any]:
    by_name = {r.name: r for r in results}
    ordered = [by_name[n] for n in order if n in by_name] + [r for r in results if r.name not in order]
    return {
        "generated": generated,
        "command": COMMAND,
        "machine": machine,
        "benchmarks": {r.name: r.to_json() for r in ordered},
    }


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")


def machine_line(machine: dict[str, Any]) -> str:
    return (
        f"{machine['cpu_model']}, {machine['nproc']} CPUs (nproc), {machine['memory_gib']:.1f} GiB memory, "
        f"{machine['os']}; Python {machine['python']}"
        + "".join(f", {tool} {version}" for tool, version in sorted(machine.get("tools", {}).items()))
    )


def markdown(document: dict[str, Any], image_dir: str, heading_level: int = 2) -> str:
    """The whole report as Markdown; images are linked as ``<image_dir>/<file>``."""
    hashes = "#" * heading_level
    lines = [
        f"Measured on {machine_line(document['machine'])}, {document['generated']}. "
        f"Reproduce with `{document['command']}` (writes `build/bench/`). "
        "Figures are medians with min–max in parentheses; nothing here is typed by hand.",
        "",
    ]
    for result in (BenchResult.from_json(v) for v in document["benchmarks"].values()):
        quick = " (quick run: fewer repetitions, smaller inputs)" if result.quick else ""
        lines += [f"{hashes} {result.title}{quick}", "", result.method, ""]
        for table in result.tables:
            if table.caption:
                lines += [table.caption, ""]
            lines.append("| " + " | ".join(table.columns) + " |")
            lines.append("|" + "|".join(" --- " for _ in table.columns) + "|")
            lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in table.rows]
            lines.append("")
        if result.targets:
            lines += [f"- {target.text(judged=not result.quick)}" for target in result.targets]
            lines.append("")
        if result.notes:
            lines += [f"- {note}" for note in result.notes]
            lines.append("")
        if result.assumptions:
            lines += ["Assumptions:", ""] + [f"- {a}" for a in result.assumptions] + [""]
        for chart in result.charts:
            prefix = f"{image_dir.rstrip('/')}/" if image_dir else ""
            lines += [f"![{chart.caption}]({prefix}{chart.file})", ""]
    return "\n".join(lines).rstrip() + "\n"


def replace_between_markers(text: str, body: str) -> str:
    """``text`` with what lies between the markers replaced by ``body``; fails unless there is one pair."""
    starts, ends = text.count(START_MARKER), text.count(END_MARKER)
    if starts != 1 or ends != 1:
        raise ReadmeMarkersError(
            f"README needs exactly one '{START_MARKER}' and one '{END_MARKER}' line "
            f"(found {starts} and {ends}); add them to the Performance section"
        )
    head, rest = text.split(START_MARKER)
    if END_MARKER not in rest:
        raise ReadmeMarkersError(f"'{END_MARKER}' comes before '{START_MARKER}' in the README")
    _, tail = rest.split(END_MARKER)
    return f"{head}{START_MARKER}\n{body.strip()}\n{END_MARKER}{tail}"


README_CHARTS = Path("docs") / "bench"  # beside the README and committed: build/ is not


def update_readme(readme: Path, document: dict[str, Any], out: Path) -> None:
    """Rewrite the README's Performance section from ``document``; its charts are copied beside the README."""
    try:
        text = readme.read_text()
    except OSError as err:
        raise ReadmeMarkersError(f"cannot read {readme}: {err}") from None
    updated = replace_between_markers(text, markdown(document, README_CHARTS.as_posix(), heading_level=3))
    charts = readme.resolve().parent / README_CHARTS
    charts.mkdir(parents=True, exist_ok=True)
    linked = {c.file for v in document["benchmarks"].values() for c in BenchResult.from_json(v).charts}
    for stale in charts.glob("*.png"):
        if stale.name not in linked:
            stale.unlink()
    for name in sorted(linked):
        if (out / name).exists():  # results kept from an earlier run may have their chart here already
            shutil.copyfile(out / name, charts / name)
    if updated != text:
        readme.write_text(updated)
