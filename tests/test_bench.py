"""Unit tests of the benchmark harness: statistics, the trace-simulation model, the report writer,
and the program-cost helpers (stack generation, SDK discovery, child-process measurement)."""

from __future__ import annotations

import dataclasses
import itertools
import json
import sys
from pathlib import Path

import pytest

from components.config import load_platform_config, namespace_values
from tests.conftest import dev_stack, require_tool
from tools.bench import __main__ as cli
from tools.bench import program_cost, report, simulation
from tools.bench.results import BenchContext, BenchResult, Chart, Table, Target
from tools.bench.simulation import Commit, Outcome, Project, SimulationParams
from tools.bench.stats import Summary
from tools.render import read_stack_file

# --- statistics ---------------------------------------------------------------------------------


def test_summary_is_median_with_range() -> None:
    summary = Summary.of([3.0, 1.0, 10.0, 2.0])
    assert (summary.median, summary.low, summary.high, summary.n) == (2.5, 1.0, 10.0, 4)
    assert summary.text("s") == "2.50 s (1.00–10.00)"
    assert Summary.of([4.0, 1.0, 5.0]).median == 4.0


def test_summary_text_hides_a_range_that_is_not_there() -> None:
    assert Summary.of([1.234]).text("s") == "1.23 s"
    assert Summary.of([7.0, 7.001]).text("", 1) == "7.0"


def test_summary_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Summary.of([])


def test_table_rejects_ragged_rows() -> None:
    with pytest.raises(ValueError, match="has 1 cells; expected 2"):
        Table(("a", "b"), (("only one",),))


def test_target_met_only_at_or_below_its_limit() -> None:
    assert Target("x", 0.5, 0.5, "s").met
    assert not Target("x", 0.51, 0.5, "s").met
    assert "NOT met" in Target("x", 2.0, 1.0, "s").text()


# --- trace simulation model ---------------------------------------------------------------------

PARAMS = SimulationParams(
    derivations=10,
    bootstrap_seconds=0.0,
    per_path_seconds=0.0,
    download_mib_per_second=1e12,
    upload_mib_per_second=1e12,
    validation_seconds=100.0,
    deploy_seconds=10.0,
)
PROJECT = Project(seconds=(10.0,) * 10, sizes=(1024 * 1024,) * 10)
CONVENTIONAL, GREEDY_END, GREEDY_WATCH = simulation.STRATEGIES


def commit(versions: list[int], outcome: Outcome = Outcome.OK, fail_position: int = 0) -> Commit:
    return Commit(tuple(enumerate(versions)), outcome, fail_position)


def test_watch_store_keeps_work_before_a_build_failure_and_end_push_loses_it() -> None:
    # commit 2 changes derivation 2 and fails at 7; its fix changes only derivation 7.
    trace = [
        commit([0] * 10),
        commit([0, 0] + [1] * 8, Outcome.BUILD_FAILS, fail_position=7),
        commit([0, 0] + [1] * 5 + [2] * 3),
    ]
    end = simulation.simulate(trace, PROJECT, GREEDY_END, PARAMS)
    watch = simulation.simulate(trace, PROJECT, GREEDY_WATCH, PARAMS)
    # built: 10 cold + 5 before the failure + (fix) 8 again with end push vs 3 with watch-store
    assert end.built == 10 + 5 + 8
    assert watch.built == 10 + 5 + 3
    assert watch.compute_seconds < end.compute_seconds


@pytest.mark.parametrize(
    ("validation", "greedy_green", "conventional_green"),
    [
        (60.0, 100 + 10, 60 + 100 + 10),  # the build (10 × 10 s) is the longer branch
        (150.0, 150 + 10, 150 + 100 + 10),  # validation is
    ],
)
def test_greedy_overlaps_validation_and_build_conventional_adds_them(
    validation: float, greedy_green: float, conventional_green: float
) -> None:
    params = dataclasses.replace(PARAMS, validation_seconds=validation)
    trace = [commit([0] * 10)]  # cold cache: 10 derivations × 10 s
    conventional = simulation.simulate(trace, PROJECT, CONVENTIONAL, params)
    greedy = simulation.simulate(trace, PROJECT, GREEDY_END, params)
    assert conventional.green_seconds == [pytest.approx(conventional_green)]
    assert greedy.green_seconds == [pytest.approx(greedy_green)]
    assert conventional.compute_seconds == pytest.approx(greedy.compute_seconds) == validation + 100 + 10


def test_validation_failure_skips_the_conventional_build_but_greedy_caches_it() -> None:
    params = dataclasses.replace(PARAMS, validation_seconds=60.0)  # shorter than the cold build (100 s)
    trace = [commit([0] * 10, Outcome.VALIDATION_FAILS), commit([0] * 9 + [1])]
    conventional = simulation.simulate(trace, PROJECT, CONVENTIONAL, params)
    greedy = simulation.simulate(trace, PROJECT, GREEDY_END, params)
    assert conventional.built == 10  # only the fix commit built, everything
    assert greedy.built == 10 + 1  # the fix rebuilt only the changed derivation
    assert conventional.red_feedback_seconds == greedy.red_feedback_seconds == [60.0]
    assert conventional.red_seconds == [60.0]
    assert greedy.red_seconds == [pytest.approx(100.0)]  # red only when the build (100 s) has finished too
    assert greedy.hits == 9
    # compute: validation 60 + (conventional) nothing else / (greedy) the 100 s build, then the green fix
    assert conventional.compute_seconds == pytest.approx(60 + 60 + 100 + 10)
    assert greedy.compute_seconds == pytest.approx(60 + 100 + 60 + 10 + 10)


def test_end_push_sits_after_the_build_and_watch_store_overlaps_it() -> None:
    slow_upload = dataclasses.replace(PARAMS, upload_mib_per_second=0.5)  # 2 s per 1 MiB path
    trace = [commit([0] * 10)]
    end = simulation.simulate(trace, PROJECT, GREEDY_END, slow_upload)
    watch = simulation.simulate(trace, PROJECT, GREEDY_WATCH, slow_upload)
    build_end = 100 + 10 * 2  # build then push all
    build_watch = 100 + 2  # uploads overlap the 10 s builds; only the last one drains
    assert end.green_seconds == [pytest.approx(build_end + 10)]
    assert watch.green_seconds == [pytest.approx(build_watch + 10)]


def test_a_repeated_commit_is_all_cache_hits() -> None:
    trace = [commit([0] * 10), commit([0] * 10)]
    totals = simulation.simulate(trace, PROJECT, CONVENTIONAL, PARAMS)
    assert (totals.hits, totals.lookups, totals.built) == (10, 20, 10)


def test_reclaimable_bytes_are_stored_minus_the_last_green_closure() -> None:
    trace = [commit([0] * 10), commit([0] * 9 + [1])]
    totals = simulation.simulate(trace, PROJECT, CONVENTIONAL, PARAMS)
    metrics = simulation.metrics(totals)
    assert metrics["stored_gib"] * 1024 == pytest.approx(11)
    assert metrics["reclaimable_gib"] * 1024 == pytest.approx(1)


def test_trace_fix_commits_follow_their_failure() -> None:
    params = SimulationParams(pipelines=400, derivations=12, validation_failure_rate=0.3, build_failure_rate=0.3)
    trace = simulation.make_trace(params, simulation.random.Random(7))
    seen = {Outcome.BUILD_FAILS: 0, Outcome.VALIDATION_FAILS: 0}
    for failed, fix in itertools.pairwise(trace):
        if failed.outcome is Outcome.OK:
            continue
        seen[failed.outcome] += 1
        kept = failed.fail_position if failed.outcome is Outcome.BUILD_FAILS else params.derivations - 1
        assert fix.paths[:kept] == failed.paths[:kept]
        assert fix.paths[kept] != failed.paths[kept]
        assert fix.paths[kept:] != failed.paths[kept:]
    assert seen[Outcome.BUILD_FAILS] > 50 and seen[Outcome.VALIDATION_FAILS] > 50


def test_simulation_is_deterministic_for_a_seed_and_differs_across_seeds() -> None:
    params = SimulationParams(pipelines=60, seeds=(3, 4))
    first, _ = simulation.run_seeds(params)
    again, _ = simulation.run_seeds(params)
    assert first == again
    compute = first["conventional"]["compute_minutes"]
    assert compute.values[0] != compute.values[1]


def test_failure_rate_zero_means_every_pipeline_green() -> None:
    params = SimulationParams(pipelines=30, seeds=(1,), validation_failure_rate=0, build_failure_rate=0)
    summaries, _ = simulation.run_seeds(params)
    for strategy in simulation.STRATEGIES:
        assert summaries[strategy.name]["red_pipeline_median_seconds"].median == 0.0
    # without failures, pushing early or late leaves the same cache: same work, same hits
    assert summaries["greedy-end-push"]["hit_rate_percent"] == summaries["greedy-watch-store"]["hit_rate_percent"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"validation_failure_rate": "1.5"}, "validation_failure_rate must be within 0..1"),
        ({"validation_failure_rate": "0.6", "build_failure_rate": "0.6"}, "must not exceed 1"),
        ({"failure_point": "1"}, "failure_point"),
        ({"derivations": "0"}, "at least 1"),
        ({"no_such_knob": "1"}, "unknown simulation parameter 'no_such_knob'"),
    ],
)
def test_bad_simulation_parameters_are_refused(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SimulationParams().with_overrides(overrides)


def test_simulation_overrides_are_parsed_to_their_types() -> None:
    params = SimulationParams().with_overrides({"seeds": "9,8", "pipelines": "20", "failure_point": "0.75"})
    assert (params.seeds, params.pipelines, params.failure_point) == ((9, 8), 20, 0.75)
    assert SimulationParams().with_overrides({"failure_point": "uniform"}).failure_point is None


def test_assumptions_print_the_parameters_in_force() -> None:
    text = "\n".join(SimulationParams(derivations=17, build_failure_rate=0.25).assumptions())
    assert "chain of 17 derivations" in text and "probability 0.25" in text


def test_strategy_names_are_unique() -> None:
    assert len({s.name for s in simulation.STRATEGIES}) == 3  # results are keyed by name


# --- report writer ------------------------------------------------------------------------------

MACHINE = {"nproc": 2, "cpu_model": "Test CPU", "memory_gib": 8.0, "os": "TestOS", "python": "3.11", "tools": {}}


def sample_result(name: str = "simulation", quick: bool = False) -> BenchResult:
    return BenchResult(
        name=name,
        title=f"Title of {name}",
        method="How it ran.",
        tables=[Table(("variant", "time"), (("a|b", Summary.of([1.0, 2.0, 3.0]).text("s")),))],
        targets=[Target("claim", 1.0, 5.0, "s")],
        assumptions=["An assumption."],
        charts=[Chart(f"{name}.png", "A chart")],
        data={"x": 1},
        quick=quick,
    )


def sample_document(*results: BenchResult) -> dict[str, object]:
    return report.results_document(list(results) or [sample_result()], MACHINE, "2030-01-01 00:00 UTC", ["simulation"])


def test_markdown_holds_tables_targets_assumptions_and_charts() -> None:
    text = report.markdown(sample_document(), image_dir="build/bench", heading_level=3)
    assert "### Title of simulation\n" in text
    assert "| a\\|b | 2.00 s (1.00–3.00) |" in text
    assert "- claim: 1.00 s (target ≤ 5 s) — met" in text
    assert "- An assumption." in text
    assert "![A chart](build/bench/simulation.png)" in text
    assert "Test CPU, 2 CPUs (nproc), 8.0 GiB memory" in text and "`make bench`" in text


def test_quick_results_say_so_and_judge_no_target() -> None:
    text = report.markdown(sample_document(sample_result(quick=True)), image_dir="")
    assert "(quick run: fewer repetitions, smaller inputs)" in text
    assert "not judged (quick run)" in text and "— met" not in text and "NOT met" not in text
    full = report.markdown(sample_document(sample_result(quick=False)), image_dir="")
    assert "not judged" not in full


def test_results_round_trip_through_json() -> None:
    result = sample_result()
    assert BenchResult.from_json(json.loads(json.dumps(result.to_json()))) == result


README_TEXT = (
    "# Project\n\nintro\n\n## Performance\n\n<!-- bench:start -->\nold figures\n<!-- bench:end -->\n\ntail ✓\n"
)


def _chart_in(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "simulation.png").write_bytes(b"\x89PNG stand-in bytes")
    return out


def test_readme_is_changed_only_between_the_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_bytes(README_TEXT.encode())
    (tmp_path / "docs" / "bench").mkdir(parents=True)
    (tmp_path / "docs" / "bench" / "stale.png").write_bytes(b"old chart")
    report.update_readme(readme, sample_document(), _chart_in(tmp_path / "build" / "bench"))
    text = readme.read_text()
    head, rest = text.split(report.START_MARKER)
    body, tail = rest.split(report.END_MARKER)
    assert head == README_TEXT.split(report.START_MARKER)[0]
    assert tail == README_TEXT.split(report.END_MARKER)[1]
    assert "old figures" not in body and "Title of simulation" in body
    # charts are copied beside the README (build/ is not committed) and linked relative to it
    assert "![A chart](docs/bench/simulation.png)" in body
    assert (tmp_path / "docs" / "bench" / "simulation.png").read_bytes() == b"\x89PNG stand-in bytes"
    assert not (tmp_path / "docs" / "bench" / "stale.png").exists()


def test_readme_update_is_idempotent(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(README_TEXT)
    report.update_readme(readme, sample_document(), _chart_in(tmp_path / "out"))
    once = readme.read_text()
    report.update_readme(readme, sample_document(), tmp_path / "out")
    assert readme.read_text() == once


@pytest.mark.parametrize(
    "text",
    [
        "# no markers at all\n",
        "<!-- bench:start -->\nonly the start\n",
        "<!-- bench:end -->\nx\n<!-- bench:start -->\n",
        "<!-- bench:start -->\n<!-- bench:end -->\n<!-- bench:start -->\n<!-- bench:end -->\n",
    ],
)
def test_readme_without_one_ordered_marker_pair_is_refused_and_left_alone(tmp_path: Path, text: str) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(text)
    with pytest.raises(report.ReadmeMarkersError, match="bench:"):
        report.update_readme(readme, sample_document(), tmp_path)
    assert readme.read_text() == text


def test_cli_fails_fast_when_the_readme_has_no_markers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    code = cli.main(["--out", str(tmp_path / "out"), "--only", "simulation", "--readme", str(readme)])
    assert code == cli.EXIT_USAGE
    assert "exactly one '<!-- bench:start -->'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before any benchmark ran


def test_previous_results_are_kept_only_from_the_same_machine(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    report.write_json(path, sample_document())
    assert set(report.load_previous(path, MACHINE)) == {"simulation"}
    assert report.load_previous(path, {**MACHINE, "nproc": 64}) == {}
    assert report.load_previous(tmp_path / "missing.json", MACHINE) == {}


def test_full_run_with_only_one_benchmark_updates_readme_and_keeps_earlier_results(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(README_TEXT)
    out = tmp_path / "out"
    out.mkdir()
    from tools.bench.machine import describe

    earlier = report.results_document([sample_result("program-cost")], describe(), "earlier", list(cli.BENCHMARKS))
    report.write_json(out / "results.json", earlier)
    args = ["--out", str(out), "--only", "simulation", "--readme", str(readme), "--param", "simulation.pipelines=20"]
    assert cli.main([*args, "--param", "simulation.seeds=1,2"]) == cli.EXIT_OK
    document = json.loads((out / "results.json").read_text())
    assert list(document["benchmarks"]) == ["simulation", "program-cost"]
    assert document["benchmarks"]["simulation"]["data"]["params"]["pipelines"] == 20
    assert "Title of program-cost" in readme.read_text()
    assert (out / "simulation-summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- program cost helpers -----------------------------------------------------------------------


def test_generated_stack_has_n_valid_unique_pools(tmp_path: Path) -> None:
    path = program_cost.stack_with_pools(program_cost.DEV_STACK, 25, tmp_path / "Pulumi.pools.yaml")
    stack = read_stack_file(path)
    config = load_platform_config(*namespace_values(stack.values, stack.secret_keys))
    assert len(config.runners) == 25
    assert len({pool.name for pool in config.runners}) == 25
    dev = dev_stack()
    assert {k: v for k, v in stack.values.items() if k != "flywheel:runners"} == {
        k: v for k, v in dev.values.items() if k != "flywheel:runners"
    }


def test_sdk_modules_are_found_in_the_program_sources() -> None:
    modules = program_cost.sdk_modules()
    assert {"pulumi", "pulumi_kubernetes", "pulumi_gitlab"} <= set(modules)
    assert all(m.startswith("pulumi") for m in modules)


def test_measure_reports_a_childs_own_peak_memory() -> None:
    small = program_cost.measure([sys.executable, "-c", "pass"])
    big = program_cost.measure(
        [sys.executable, "-c", "b = bytearray(300 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096])"]
    )
    assert big.peak_rss_mib > small.peak_rss_mib + 250
    assert 0 < small.seconds < big.seconds + 5


def test_measure_is_not_charged_for_this_processs_memory() -> None:
    # On Linux a forked child's ru_maxrss starts at its parent's high-water mark; the launcher avoids that.
    ballast = bytearray(300 * 1024 * 1024)
    ballast[::4096] = b"x" * len(ballast[::4096])
    assert program_cost.measure([sys.executable, "-c", "pass"]).peak_rss_mib < 60
    del ballast


def test_measure_fails_with_the_childs_error() -> None:
    with pytest.raises(program_cost.MeasurementError, match="boom"):
        program_cost.measure([sys.executable, "-c", "import sys; sys.exit('boom')"])


def test_resource_count_is_read_from_the_render_summary() -> None:
    assert program_cost.resource_count("flywheel render: stack 'dev' -> x\n  42 resources:\n") == 42


def test_linearity_target_follows_a_straight_line() -> None:
    counts = (1, 10, 50, 100)
    times = {1: Summary.of([9.0]), 10: Summary.of([1.0, 1.1]), 50: Summary.of([3.0, 3.2]), 100: Summary.of([5.5])}
    target = program_cost._linearity_target(counts, times)
    # medians 1.05 s at 10 pools and 3.1 s at 50: 2.05 s / 40 pools, × 50 more pools = 2.5625 s, + spread 0.2 s
    assert target.limit == pytest.approx(5.86, abs=0.005)
    assert target.met  # 1 pool's noisy figure plays no part
    times[100] = Summary.of([9.0])  # quadratic-looking growth
    assert not program_cost._linearity_target(counts, times).met


def test_bench_context_quick_means_one_repetition(tmp_path: Path) -> None:
    assert BenchContext(tmp_path, tmp_path, quick=True).repetitions == 1
    assert BenchContext(tmp_path, tmp_path).repetitions == 5


# --- parts 1–3: the pieces that do not need Nix ----------------------------------------------------


def test_template_variables_interpolate_inputs_and_resolve_the_state_dir(tmp_path: Path) -> None:
    from tools.bench.attic_lab import template_variables

    variables = template_variables({"attic-client-ref": "path:/c#a", "fallback-client-ref": ".#b"}, tmp_path)
    assert variables["GREEDY_ATTIC_CLIENT_REF"] == "path:/c#a"
    assert variables["GREEDY_ATTIC_FALLBACK_CLIENT_REF"] == ".#b"
    assert variables["GREEDY_ATTIC_STATE_DIR"] == str(tmp_path)
    assert not any("$[[" in value for value in variables.values())
    with pytest.raises(KeyError, match="attic-client-ref"):
        template_variables({}, tmp_path)


def test_built_links_counts_only_this_chains_builds() -> None:
    from tools.bench.attic_lab import built_links

    log = (
        "building '/nix/store/aaa-lab-0badf00d-link3.drv'...\n"
        "building '/nix/store/bbb-lab-0badf00d-link12.drv'...\n"
        "building '/nix/store/ccc-lab-deadbeef-link1.drv'...\n"
        "copying path '/nix/store/ddd-lab-0badf00d-link1' from 'http://127.0.0.1:1/main'...\n"
    )
    assert built_links(log, "0badf00d") == [3, 12]


def test_resumability_k_must_leave_something_to_fail() -> None:
    from tools.bench.resumability import ChainParams

    assert ChainParams().length - ChainParams().completed == 5
    for completed in (0, 20):
        with pytest.raises(ValueError, match="k must be within"):
            ChainParams(length=20, completed=completed)


def test_resumability_build_script_is_the_templates_own() -> None:
    from tools.bench.attic_lab import template_jobs
    from tools.bench.resumability import build_only_script, job_script

    script = template_jobs()["greedy:nix-build"]["script"]
    assert job_script() == "\n".join(script)
    assert script[1].startswith(build_only_script()) and build_only_script().endswith(')" nix-build </dev/null')


def test_params_are_parsed_to_their_declared_types() -> None:
    from tools.bench.params import with_overrides
    from tools.bench.pipeline import PipelineParams
    from tools.bench.resumability import ChainParams

    quick = PipelineParams(validate_seconds=2, build_seconds=2, deploy_seconds=1, links=2)  # ints in float fields
    assert with_overrides(quick, {"validate_seconds": "1.5", "links": "3"}, "pipeline") == dataclasses.replace(
        quick, validate_seconds=1.5, links=3
    )
    with pytest.raises(ValueError, match=r"unknown resumability parameter 'n' \(known: completed, length, seconds\)"):
        with_overrides(ChainParams(), {"n": "3"}, "resumability")
    with pytest.raises(ValueError, match=r"resumability.length expects int \(got '2.5'\)"):
        with_overrides(ChainParams(), {"length": "2.5"}, "resumability")
    with pytest.raises(ValueError, match="k must be within"):  # the dataclass's own checks still run
        with_overrides(ChainParams(), {"completed": "20"}, "resumability")


def test_pipeline_ideal_ratio_is_the_issues_formula() -> None:
    from tools.bench.pipeline import PipelineParams

    assert PipelineParams().ideal_ratio == pytest.approx((5 + 2) / (5 + 5 + 2))
    assert PipelineParams(validate_seconds=1, build_seconds=9, deploy_seconds=0).ideal_ratio == pytest.approx(0.9)


def test_pipeline_events_are_read_from_gitlab_ci_local_lines() -> None:
    from tools.bench.pipeline import BUILD_JOB, parse_events

    lines = [
        (10.0, "json schema validated in 309 ms"),
        (10.5, f"{BUILD_JOB}   starting shell (build)"),
        (10.5, "validate           starting shell (validate)"),
        (10.6, f"{BUILD_JOB}   $ bash -c \"$(cat <<'GREEDY_ATTIC_BOOTSTRAP' # collapsed multi-line command"),
        (11.5, f"{BUILD_JOB}   $ greedy_build_exit=0"),
        (11.5, f"{BUILD_JOB}   $ bash -c \"$(cat <<'GREEDY_NIX_BUILD' # collapsed multi-line command"),
        (15.5, "validate           finished in 5.02 s  FAIL 1 "),
        (15.8, f"{BUILD_JOB}   $ GREEDY_ATTIC_PHASE=script bash -c \"$(cat <<'GREEDY_ATTIC_TEARDOWN' # collapsed"),
        (16.2, f'{BUILD_JOB}   $ exit "$greedy_build_exit"'),
        (16.3, f"{BUILD_JOB}   Running after script..."),
        (19.0, f"{BUILD_JOB}   finished in 8.5 s"),
        (19.0, " PASS  greedy:nix-build"),
    ]
    jobs, marks = parse_events(lines, before_script_lines=1)
    assert jobs == {BUILD_JOB: [10.5, 19.0], "validate": [10.5, 15.5]}
    assert marks == {"nix": 11.5, "publish": 15.8, "after": 16.3}


def test_pipeline_run_splits_the_build_job_into_its_phases() -> None:
    from tools.bench.pipeline import BUILD_JOB, PipelineRun

    run = PipelineRun("greedy", False, 0, 0.0, 12.0, {"validate": (0.0, 5.0), BUILD_JOB: (0.0, 9.0)})
    run.marks = {"nix": 1.5, "publish": 6.5, "after": 7.0}
    run.jobs["deploy"] = (9.0, 11.0)
    assert run.build_phases() == (1.5, 5.0, 2.5), "the teardown: end of script to the end of after_script"
    assert run.span == 11.0


def _consumer(variant: str, fail: bool = False) -> dict[str, object]:
    from tools.bench.attic_lab import AtticLab
    from tools.bench.pipeline import PipelineParams, consumer_pipeline
    from tools.nix_lab import Chain

    class FakeCache:
        url = "http://127.0.0.1:9"

    lab = AtticLab(Path("/w"), FakeCache(), None, "t", "/nix/store/x", Path("/w/client"), {})  # type: ignore[arg-type]
    chain = Chain(Path("/w/chain"), "seed", 5, None)
    loaded: dict[str, object] = yaml_load(consumer_pipeline(variant, chain, lab, PipelineParams(), fail))
    return loaded


def yaml_load(text: str) -> dict[str, object]:
    import yaml

    loaded: dict[str, object] = yaml.safe_load(text)
    return loaded


def test_conventional_consumer_waits_for_validation_and_greedy_does_not() -> None:
    from tools.bench.pipeline import BUILD_JOB

    greedy, conventional = _consumer("greedy"), _consumer("conventional")
    assert BUILD_JOB not in greedy  # the template's own needs: [] applies
    assert conventional[BUILD_JOB] == {"needs": ["validate"]}
    assert greedy["deploy"] == {
        "stage": "deploy",
        "needs": ["validate", {"job": BUILD_JOB, "optional": True}],
        "script": ["sleep 2"],
    }
    include = greedy["include"][0]  # type: ignore[index]
    assert include["inputs"]["installable"] == "path:/w/chain#default"
    assert include["inputs"]["attic-client-ref"] == "path:/w/client#attic-client"
    assert _consumer("greedy", fail=True)["validate"]["script"][-1] == "exit 1"  # type: ignore[index]


@pytest.mark.slow
def test_gitlab_ci_local_reads_the_consumer_pipelines_as_intended(tmp_path: Path) -> None:
    """The real gitlab-ci-local (--preview) expands the include with inputs and the conventional override."""
    import subprocess

    import yaml

    from tools.bench.attic_lab import AtticLab
    from tools.bench.pipeline import BUILD_JOB, PipelineParams, consumer_pipeline, write_project
    from tools.nix_lab import Chain

    tool = require_tool("gitlab-ci-local")

    class FakeCache:
        url = "http://127.0.0.1:9"

    lab = AtticLab(tmp_path, FakeCache(), type("K", (), {"public": "k:1"})(), "t", "/x", tmp_path, {})  # type: ignore[arg-type]
    chain = Chain(tmp_path / "chain", "seed", 5, None)
    expanded = {}
    for variant in ("greedy", "conventional"):
        project = tmp_path / variant
        write_project(project, consumer_pipeline(variant, chain, lab, PipelineParams(), False), lab)
        done = subprocess.run([tool, "--preview"], cwd=project, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        expanded[variant] = yaml.safe_load(done.stdout)

    def needs(variant: str) -> list[str]:
        return [n["job"] if isinstance(n, dict) else n for n in expanded[variant][BUILD_JOB]["needs"]]

    assert needs("greedy") == []
    assert needs("conventional") == ["validate"]
    for document in expanded.values():
        assert f"path:{tmp_path}/chain#default" in str(document[BUILD_JOB]["variables"])
        assert "GREEDY_ATTIC_BOOTSTRAP" in str(document[BUILD_JOB]["before_script"])


def test_chain_pushes_counts_each_output_of_the_chain_once(tmp_path: Path) -> None:
    """A narinfo counts by its own StorePath, not by the links it references, and only its first upload."""
    from types import SimpleNamespace

    from tools.bench.pipeline import chain_pushes
    from tools.nix_lab import Request

    seed = "abcd1234"
    cache = tmp_path / "main"
    cache.mkdir()
    narinfos = {
        "link1": f"StorePath: /nix/store/{'a' * 32}-lab-{seed}-link1\nReferences: \n",
        "link2": f"StorePath: /nix/store/{'b' * 32}-lab-{seed}-link2\nReferences: {'a' * 32}-lab-{seed}-link1\n",
        # not an output of the chain, though it references one
        "other": f"StorePath: /nix/store/{'c' * 32}-result-env\nReferences: {'b' * 32}-lab-{seed}-link2\n",
    }
    for name, text in narinfos.items():
        (cache / f"{name}.narinfo").write_text(text)
    requests = [
        Request(10.0, "PUT", "/main/link1.narinfo", 200),
        Request(11.0, "PUT", "/main/other.narinfo", 200),
        Request(12.0, "PUT", "/main/link1.narinfo", 200),  # the teardown's push uploads it again
        Request(12.5, "PUT", "/main/link2.narinfo", 500),  # a failed upload stored nothing
        Request(13.0, "PUT", "/main/link2.narinfo", 200),
        Request(14.0, "GET", "/main/link2.narinfo", 200),
    ]
    lab = SimpleNamespace(cache=SimpleNamespace(requests=requests, root=tmp_path))
    assert chain_pushes(lab, seed, since=10.0) == [0.0, 3.0]  # type: ignore[arg-type]
