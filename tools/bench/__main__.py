"""Run the benchmarks and write build/bench/ (and, on a full run, the README's Performance section).

    python -m tools.bench --out build/bench [--quick] [--only NAME ...] [--param BENCH.KEY=VALUE ...]

Exit codes: 0 every selected benchmark ran (targets are reported, not enforced), 1 a benchmark
failed to run, 2 bad arguments or README markers missing.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from tools.bench import report
from tools.bench.machine import describe
from tools.bench.results import BenchContext, BenchResult

ROOT = Path(__file__).resolve().parents[2]
# name -> module; in the order of the issue (pipeline, bootstrap, resumability, simulation, program cost)
BENCHMARKS = {
    "pipeline": "tools.bench.pipeline",
    "bootstrap": "tools.bench.bootstrap",
    "resumability": "tools.bench.resumability",
    "simulation": "tools.bench.simulation",
    "program-cost": "tools.bench.program_cost",
}
TUNABLE = ("pipeline", "resumability", "simulation")
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def run_one(name: str, context: BenchContext, overrides: dict[str, dict[str, str]]) -> BenchResult:
    module = importlib.import_module(BENCHMARKS[name])
    started = time.monotonic()
    if name in TUNABLE:
        result: BenchResult = module.run(context, overrides.get(name, {}))
    else:
        result = module.run(context)
    result.seconds = time.monotonic() - started
    return result


def parse_overrides(pairs: list[str]) -> dict[str, dict[str, str]]:
    """``["simulation.pipelines=100"]`` -> ``{"simulation": {"pipelines": "100"}}``."""
    overrides: dict[str, dict[str, str]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        bench, dot, knob = key.strip().partition(".")
        if not sep or not dot or not knob:
            raise ValueError(f"--param expects BENCHMARK.KEY=VALUE (got {pair!r})")
        if bench not in TUNABLE:
            raise ValueError(f"--param: {bench!r} has no parameters (tunable: {', '.join(TUNABLE)})")
        overrides.setdefault(bench, {})[knob.replace("-", "_")] = value.strip()
    return overrides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench", help="output folder")
    parser.add_argument("--quick", action="store_true", help="one run each, small inputs; never touches README")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), metavar="NAME", help=", ".join(BENCHMARKS))
    parser.add_argument(
        "--param", action="append", default=[], metavar="BENCH.KEY=VALUE", help="e.g. simulation.pipelines=100"
    )
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md", help="README to update (full runs)")
    parser.add_argument("--no-readme", action="store_true", help="do not update the README")
    args = parser.parse_args(argv)

    try:
        overrides = parse_overrides(args.param)
    except ValueError as err:
        parser.error(str(err))
    names = args.only or list(BENCHMARKS)
    update_readme = not (args.quick or args.no_readme)
    if update_readme:  # fail before minutes of benchmarking, not after
        try:
            report.replace_between_markers(args.readme.read_text(), "")
        except (OSError, report.ReadmeMarkersError) as err:
            print(f"tools.bench: {err} (README: {args.readme}; use --no-readme to skip it)", file=sys.stderr)
            return EXIT_USAGE

    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    machine = describe()
    print(f"tools.bench: {', '.join(names)} -> {out}{' (quick)' if args.quick else ''}")
    print(f"  machine: {report.machine_line(machine)}")
    results = report.load_previous(out / "results.json", machine)
    failures: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="flywheel-bench-"))
    try:
        for name in names:
            context = BenchContext(out=out, work=work / name, quick=args.quick)
            context.work.mkdir(parents=True)
            print(f"  {name}: running ...", flush=True)
            try:
                result = run_one(name, context, overrides)
            except Exception as err:  # noqa: BLE001 — one broken benchmark must not hide the others' figures
                failures.append(name)
                print(f"  {name}: FAILED: {err}", file=sys.stderr)
                traceback.print_exc(file=sys.stderr)
                continue
            results[name] = result
            print(f"  {name}: done in {result.seconds:.1f} s")
            for target in result.targets:
                print(f"    {target.text(judged=not result.quick)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    document = report.results_document(list(results.values()), machine, generated, list(BENCHMARKS))
    report.write_json(out / "results.json", document)
    (out / "results.md").write_text("# flywheel benchmarks\n\n" + report.markdown(document, image_dir=""))
    print(f"  wrote {out / 'results.json'}, {out / 'results.md'}")
    if update_readme and not failures:
        report.update_readme(args.readme, document, out)
        print(f"  updated the Performance section of {args.readme}")
    elif update_readme:
        print("  README left unchanged: a benchmark failed", file=sys.stderr)
    return EXIT_FAILED if failures else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
