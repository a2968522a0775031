"""Part 1: pipeline wall time, greedy (``needs: []``) vs conventional (stage order), with gitlab-ci-local.

A consumer project includes the component that components/ci_template.py renders (``include: local``
with ``inputs:``, as gitlab-ci-local 4.73.0 supports) and adds its own ``validate`` and ``deploy`` jobs.
The template's ``greedy:nix-build`` job builds a chain of derivations with real Nix (its bootstrap,
watch-store and teardown against the loopback Attic stand-in and the STAND-IN client of
tools/nix_lab.py). Conventional: the same file with ``greedy:nix-build`` overridden to ``needs:
[validate]``, which is what stage order gives this pipeline. The shell executor runs every job on
this machine; job start and end times are the moments gitlab-ci-local prints their lines.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import shutil
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.ci_template import COMPONENT_FILE, render_component
from components.config import CiTemplateConfig
from tools import nix_lab
from tools.bench.attic_lab import CACHE, AtticLab, attic_lab, template_jobs
from tools.bench.machine import GITLAB_CI_LOCAL
from tools.bench.params import with_overrides
from tools.bench.results import BenchContext, BenchResult, Chart, Table, Target
from tools.bench.stats import Summary

BUILD_JOB = "greedy:nix-build"
JOBS = ("validate", BUILD_JOB, "deploy")
VARIANTS = ("greedy", "conventional")
LINE = re.compile(r"^(?P<job>\S+)\s+(?P<rest>.*)$")


@dataclass(frozen=True)
class PipelineParams:
    validate_seconds: float = 5.0
    build_seconds: float = 5.0  # the Nix build's own work: a chain of `links` derivations
    deploy_seconds: float = 2.0
    links: int = 5

    @property
    def ideal_ratio(self) -> float:
        v, b, d = self.validate_seconds, self.build_seconds, self.deploy_seconds
        return (max(v, b) + d) / (v + b + d)


@dataclass
class PipelineRun:
    variant: str
    validation_fails: bool
    returncode: int
    started: float  # monotonic time of the first job start
    wall: float  # gitlab-ci-local process, start to exit
    jobs: dict[str, tuple[float, float]] = field(default_factory=dict)  # seconds since `started`
    marks: dict[str, float] = field(default_factory=dict)  # build job: nix build start, after_script start
    pushed_at: list[float] = field(default_factory=list)  # chain narinfos pushed (seconds since `started`)

    @property
    def span(self) -> float:
        return max(end for _, end in self.jobs.values()) - min(start for start, _ in self.jobs.values())

    def duration(self, job: str) -> float:
        start, end = self.jobs[job]
        return end - start

    def build_phases(self) -> tuple[float, float, float]:
        """Bootstrap, nix build, teardown (end of script and after_script) of the build job (seconds)."""
        start, end = self.jobs[BUILD_JOB]
        nix = self.marks.get("nix", start)
        publish = self.marks.get("publish", self.marks.get("after", end))
        return nix - start, publish - nix, end - publish


def consumer_pipeline(variant: str, chain: nix_lab.Chain, lab: AtticLab, params: PipelineParams, fail: bool) -> str:
    validate = [f"sleep {params.validate_seconds:g}"] + (["echo 'validation failed' >&2", "exit 1"] if fail else [])
    document: dict[str, Any] = {
        "stages": ["validate", "build", "deploy"],
        "include": [
            {
                "local": COMPONENT_FILE,
                "inputs": {
                    "stage": "build",
                    "installable": chain.installable,
                    "bazel-build": False,
                    "attic-client-ref": lab.client_ref,
                    "fallback-client-ref": lab.client_ref,
                },
            }
        ],
        "validate": {"stage": "validate", "needs": [], "script": validate},
        "deploy": {
            "stage": "deploy",
            "needs": ["validate", {"job": BUILD_JOB, "optional": True}],
            "script": [f"sleep {params.deploy_seconds:g}"],
        },
    }
    if variant == "conventional":
        document[BUILD_JOB] = {"needs": ["validate"]}
    return yaml.safe_dump(document, sort_keys=False)


def write_project(directory: Path, pipeline: str, lab: AtticLab) -> None:
    directory.mkdir(parents=True)
    (directory / COMPONENT_FILE).parent.mkdir(parents=True)
    (directory / COMPONENT_FILE).write_text(render_component(CiTemplateConfig()))
    (directory / ".gitlab-ci.yml").write_text(pipeline)
    variables = {"ATTIC_SERVER": lab.cache.url, "ATTIC_CACHE": CACHE, "ATTIC_PUBLIC_KEY": lab.key.public}
    variables["ATTIC_TOKEN"] = lab.token
    (directory / ".gitlab-ci-local-variables.yml").write_text(yaml.safe_dump(variables))
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@flywheel.invalid"]
    subprocess.run(["git", "init", "-q"], cwd=directory, check=True)
    subprocess.run([*git, "add", "-A"], cwd=directory, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "consumer"], cwd=directory, check=True)


def parse_events(
    lines: Sequence[tuple[float, str]], before_script_lines: int
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Job start/end times and build-job marks from timestamped gitlab-ci-local output lines.

    gitlab-ci-local echoes each command as ``$ <command>``: the build job's script starts with the
    command after its ``before_script_lines`` before_script commands, its third command is the teardown
    (``GREEDY_ATTIC_PHASE=script``); ``Running after script`` starts the after_script teardown.
    """
    jobs: dict[str, list[float]] = {}
    marks: dict[str, float] = {}
    commands = 0
    for at, line in lines:
        match = LINE.match(line)
        if not match or match.group("job") not in JOBS:
            continue
        job, rest = match.group("job"), match.group("rest")
        if rest.startswith("starting shell"):
            jobs[job] = [at, at]
        elif rest.startswith("finished in") and job in jobs:
            jobs[job][1] = at
        elif job == BUILD_JOB and rest.startswith("$ "):
            commands += 1
            if commands == before_script_lines + 1:
                marks.setdefault("nix", at)
            elif commands == before_script_lines + 3:
                marks.setdefault("publish", at)
        elif job == BUILD_JOB and rest.startswith("Running after script"):
            marks.setdefault("after", at)
    return jobs, marks


def chain_pushes(lab: AtticLab, seed: str, since: float) -> list[float]:
    """When each of the chain's outputs first reached the Attic stand-in (seconds after ``since``).

    One entry per distinct output: a narinfo counts by its own ``StorePath`` (not by the links it references),
    and only its first upload (the teardown's push may upload again what a killed watcher had sent).
    """
    first: dict[str, float] = {}
    link = re.compile(rf"^StorePath: /nix/store/[a-z0-9]+-lab-{re.escape(seed)}-link\d+$", re.M)
    for request in list(lab.cache.requests):
        if request.method != "PUT" or request.status != 200 or not request.path.endswith(".narinfo"):
            continue
        narinfo = lab.cache.root / request.path.lstrip("/")
        if request.path not in first and link.search(narinfo.read_text()):
            first[request.path] = request.at - since
    return sorted(first.values())


def run_pipeline(
    variant: str, lab: AtticLab, params: PipelineParams, work: Path, validation_fails: bool
) -> PipelineRun:
    seed = secrets.token_hex(4)
    chain = nix_lab.write_chain(work / "chain", params.links, seed=seed, seconds=params.build_seconds / params.links)
    project = work / "project"
    write_project(project, consumer_pipeline(variant, chain, lab, params, validation_fails), lab)
    lab.forget_client()  # a fresh runner: the bootstrap substitutes the client from the Attic cache
    env = lab.job_env(work / "home")
    lines: list[tuple[float, str]] = []
    started = time.monotonic()
    process = subprocess.Popen(
        [str(GITLAB_CI_LOCAL)],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        lines.append((time.monotonic(), line.rstrip("\n")))
    returncode = process.wait()
    wall = time.monotonic() - started
    (work / "gitlab-ci-local.log").write_text("\n".join(f"{at - started:8.3f} {text}" for at, text in lines))
    jobs, marks = parse_events(lines, len(template_jobs()[".greedy-attic"]["before_script"]))
    expected = {"validate"} if validation_fails and variant == "conventional" else set(JOBS)
    if validation_fails:
        expected.discard("deploy")
    if set(jobs) != expected or returncode != (1 if validation_fails else 0):
        tail = "\n".join(text for _, text in lines[-40:])
        raise RuntimeError(f"{variant} pipeline ran jobs {sorted(jobs)} and exited {returncode}:\n{tail}")
    first = min(start for start, _ in jobs.values())
    run = PipelineRun(
        variant,
        validation_fails,
        returncode,
        first,
        wall,
        {job: (start - first, end - first) for job, (start, end) in jobs.items()},
        {name: at - first for name, at in marks.items()},
        chain_pushes(lab, seed, first),
    )
    for link in project.glob("result*"):
        link.unlink()
    shutil.rmtree(project, ignore_errors=True)  # also the bootstrap's out-link of the client (a GC root)
    return run


def run(context: BenchContext, overrides: dict[str, str] | None = None) -> BenchResult:
    params = (
        PipelineParams(validate_seconds=2, build_seconds=2, deploy_seconds=1, links=2)
        if context.quick
        else PipelineParams()
    )
    params = with_overrides(params, overrides or {}, "pipeline")
    green: dict[str, list[PipelineRun]] = {v: [] for v in VARIANTS}
    red: dict[str, list[PipelineRun]] = {v: [] for v in VARIANTS}
    with attic_lab(context.work / "lab") as lab:
        for repetition in range(context.repetitions):  # interleaved, so drift hits both variants alike
            for variant in VARIANTS:
                for fails, store in ((False, green), (True, red)):
                    run_dir = context.work / f"{variant}-{'red' if fails else 'green'}-{repetition}"
                    store[variant].append(run_pipeline(variant, lab, params, run_dir, fails))
    return _result(context, params, green, red)


def _result(
    context: BenchContext,
    params: PipelineParams,
    green: dict[str, list[PipelineRun]],
    red: dict[str, list[PipelineRun]],
) -> BenchResult:
    def summary(runs: Sequence[PipelineRun], value: Any) -> Summary:
        return Summary.of([value(r) for r in runs])

    rows = []
    for variant in VARIANTS:
        runs = green[variant]
        phases = [r.build_phases() for r in runs]
        rows.append(
            (
                variant,
                summary(runs, lambda r: r.span).text("s"),
                summary(runs, lambda r: r.duration("validate")).text("s"),
                summary(runs, lambda r: r.duration(BUILD_JOB)).text("s"),
                Summary.of([p[0] for p in phases]).text("s"),
                Summary.of([p[1] for p in phases]).text("s"),
                Summary.of([p[2] for p in phases]).text("s"),
                summary(runs, lambda r: r.duration("deploy")).text("s"),
                summary(runs, lambda r: r.wall).text("s"),
            )
        )
    timing = Table(
        (
            "variant",
            "pipeline (first job start → last job end)",
            "validate",
            "build job",
            "of which bootstrap",
            "nix build",
            "teardown",
            "deploy",
            "gitlab-ci-local wall",
        ),
        tuple(rows),
        caption=f"Green pipelines (validate {params.validate_seconds:g} s, build {params.build_seconds:g} s of Nix "
        f"work in {params.links} derivations, deploy {params.deploy_seconds:g} s):",
    )
    ratio = Summary.of([g.span / c.span for g, c in zip(green["greedy"], green["conventional"], strict=True)])
    conventional = green["conventional"]
    v = statistics.median(r.duration("validate") for r in conventional)
    b = statistics.median(r.duration(BUILD_JOB) for r in conventional)
    d = statistics.median(r.duration("deploy") for r in conventional)
    measured_ideal = (max(v, b) + d) / (v + b + d)
    ratios = Table(
        (
            "greedy / conventional",
            "ideal for the nominal durations",
            "distance",
            "ideal for the measured job durations",
            "distance",
        ),
        (
            (
                ratio.text("", 3),
                f"{params.ideal_ratio:.3f}",
                f"{ratio.median - params.ideal_ratio:+.3f}",
                f"{measured_ideal:.3f}",
                f"{ratio.median - measured_ideal:+.3f}",
            ),
        ),
        caption="Ratio of pipeline times; ideal = (max(validate, build) + deploy) / (validate + build + deploy):",
    )
    failure_rows = []
    failure_data: dict[str, Any] = {}
    for variant in VARIANTS:
        runs = red[variant]
        failed_at = summary(runs, lambda r: r.jobs["validate"][1])
        red_at = summary(runs, lambda r: max(end for _, end in r.jobs.values()))
        gap = summary(runs, lambda r: max(end for _, end in r.jobs.values()) - r.jobs["validate"][1])
        cached_then = summary(runs, lambda r: sum(1 for t in r.pushed_at if t <= r.jobs["validate"][1]))
        cached_end = summary(runs, lambda r: len(r.pushed_at))
        failure_rows.append(
            (
                variant,
                failed_at.text("s"),
                red_at.text("s"),
                gap.text("s"),
                f"{cached_then.text('', 0)} of {params.links}",
                f"{cached_end.text('', 0)} of {params.links}",
            )
        )
        failure_data[variant] = {
            "validation_failed_at": failed_at.to_json(),
            "red_at": red_at.to_json(),
            "failure_to_red": gap.to_json(),
            "cached_when_validation_failed": cached_then.to_json(),
            "cached_when_red": cached_end.to_json(),
        }
    failures = Table(
        (
            "variant",
            "validation failed at",
            "pipeline red at",
            "failure → red",
            "derivations cached at the failure",
            "cached when red",
        ),
        tuple(failure_rows),
        caption="Validation fails (same pipelines, validate exits 1):",
    )
    charts = [Chart(_gantt(context, green, red), "Gantt of the median runs: greedy vs conventional, green and red")]
    # The ideal is a floor, not a limit; what is checked is that greedy beats stage order at all.
    targets = [Target("greedy / conventional pipeline time (below 1 = greedy is faster)", ratio.median, 1.0, "×")]
    data: dict[str, Any] = {
        "params": dataclasses.asdict(params),
        "ratio": ratio.to_json(),
        "ideal_nominal": params.ideal_ratio,
        "ideal_measured": measured_ideal,
        "green": {
            v: {"span": summary(green[v], lambda r: r.span).to_json(), "runs": [_run_json(r) for r in green[v]]}
            for v in VARIANTS
        },
        "validation_fails": failure_data,
    }
    return BenchResult(
        name="pipeline",
        title="Pipeline wall time: greedy vs conventional (gitlab-ci-local, real Nix)",
        method=(
            f"gitlab-ci-local (shell executor) on a consumer pipeline that includes the rendered component; "
            f"{context.repetitions} run(s) per variant and outcome, interleaved; each run builds a fresh chain and "
            "starts without the attic client in the local store (the bootstrap substitutes it from the Attic "
            "stand-in)."
        ),
        tables=[timing, ratios, failures],
        targets=targets,
        notes=[
            "In the greedy pipeline a failed validation turns the pipeline red only when the build job has "
            "finished (GitLab marks a pipeline failed when its last job ends); the build's work is cached by then.",
            "The build job carries the template's bootstrap and teardown (stop the watcher, push what it missed); "
            "they are part of "
            "the measured build duration, which is why the measured ideal differs from the nominal one.",
        ],
        charts=charts,
        data=data,
        quick=context.quick,
    )


def _run_json(run: PipelineRun) -> dict[str, Any]:
    return {"span": run.span, "wall": run.wall, "jobs": {k: list(v) for k, v in run.jobs.items()}, "marks": run.marks}


def _median_run(runs: Sequence[PipelineRun]) -> PipelineRun:
    ordered = sorted(runs, key=lambda r: r.span)
    return ordered[(len(ordered) - 1) // 2]


def _gantt(context: BenchContext, green: dict[str, list[PipelineRun]], red: dict[str, list[PipelineRun]]) -> str:
    from tools.bench.charts import Bar, gantt

    panels = []
    for outcome, runs in (("green", green), ("validation fails", red)):
        for variant in VARIANTS:
            chosen = _median_run(runs[variant])
            bars = []
            for job in (j for j in JOBS if j in chosen.jobs):
                start, end = chosen.jobs[job]
                if job == BUILD_JOB:
                    boot, nix, _ = chosen.build_phases()
                    bars += [
                        Bar(job, "bootstrap", start, start + boot, kind="overhead"),
                        Bar(job, "nix build", start + boot, start + boot + nix),
                        Bar(job, "teardown", start + boot + nix, end, kind="overhead"),
                    ]
                else:
                    failed = job == "validate" and chosen.validation_fails
                    bars.append(Bar(job, job, start, end, kind="failed" if failed else "job"))
            panels.append((f"{variant}, {outcome}: {chosen.span:.1f} s", bars))
    return gantt(context.out / "pipeline-gantt.png", panels)
