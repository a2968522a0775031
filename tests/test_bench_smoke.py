"""Smoke test: the real harness runs its quickest benchmarks end to end in ``--quick`` mode
(fresh `python -m tools.bench` process, real renders in child processes, real PNGs)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_quick_bench_writes_results_markdown_and_charts_and_leaves_readme_alone(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("<!-- bench:start -->\nkeep\n<!-- bench:end -->\n")
    out = tmp_path / "bench"
    command = [sys.executable, "-m", "tools.bench", "--out", str(out), "--quick", "--readme", str(readme)]
    done = subprocess.run(
        [*command, "--only", "simulation", "program-cost"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    document = json.loads((out / "results.json").read_text())
    assert list(document["benchmarks"]) == ["simulation", "program-cost"]
    assert document["machine"]["nproc"] >= 1
    cost = document["benchmarks"]["program-cost"]
    assert cost["quick"] is True
    renders = cost["data"]["renders"]
    assert set(renders) == {"1", "10"}
    assert all(r["seconds"]["median"] > 0 and r["peak_rss_mib"]["median"] > 20 for r in renders.values())
    assert cost["data"]["sdk_modules_loaded"] > 10
    markdown = (out / "results.md").read_text()
    assert "| make render, 10 pools |" in markdown and "| greedy-watch-store |" in markdown
    for chart in ("simulation-summary.png", "simulation-stored.png", "program-cost.png"):
        assert (out / chart).read_bytes()[:4] == b"\x89PNG", chart
        assert f"]({chart})" in markdown
    assert readme.read_text() == "<!-- bench:start -->\nkeep\n<!-- bench:end -->\n"  # --quick never publishes
