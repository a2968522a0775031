"""Part 3: resumability — a chain of N derivations fails after k of them; what does the next run rebuild?

Real Nix, the loopback Attic stand-in and the STAND-IN attic client (tools/nix_lab.py). Two jobs:

- ``watch-store``: the template's own job — attic-bootstrap.sh (starts ``attic watch-store``), the
  ``greedy:nix-build`` script (substitution pre-pass from Attic, build, teardown), after_script.
- ``end-push``: the same build with the same substitution from Attic, and one ``attic push`` of the result
  after a successful build (the pre-greedy habit: the push is skipped when the build fails).

Run 1 builds the chain with derivation k+1 failing. Between the runs the chain's paths are deleted from
the local store (the second run lands on a fresh runner). Run 2 builds the fixed chain (derivations
1..k unchanged, k+1..N changed) and is measured.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import shlex
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from tools import nix_lab
from tools.bench.attic_lab import (
    CACHE,
    AtticLab,
    Phase,
    attic_lab,
    bootstrap,
    built_links,
    run_phase,
    teardown,
    template_jobs,
    template_variables,
)
from tools.bench.params import with_overrides
from tools.bench.results import BenchContext, BenchResult, Table, Target
from tools.bench.stats import Summary

VARIANTS = ("watch-store", "end-push")


@dataclass(frozen=True)
class ChainParams:
    length: int = 20
    completed: int = 15  # derivations that finish before the failing one (k)
    seconds: float = 1.0  # each derivation sleeps this long

    def __post_init__(self) -> None:
        if not 0 < self.completed < self.length:
            raise ValueError(f"k must be within 1..N-1 (got k={self.completed}, N={self.length})")


@dataclass(frozen=True)
class SecondRun:
    rebuilt: int
    pushed_by_first: int
    build_seconds: float
    job_seconds: float


def job_script() -> str:
    """The greedy:nix-build script (pre-pass, build, teardown, the build's exit code), as one job shell runs it."""
    return "\n".join(template_jobs()["greedy:nix-build"]["script"])


def build_only_script() -> str:
    """Only the substitution pre-pass and the build (the end-push job's build)."""
    item: str = template_jobs()["greedy:nix-build"]["script"][1]
    return item.rsplit(" || ", 1)[0]


def substituter_conf(lab: AtticLab, state: Path) -> None:
    """What the bootstrap writes when Attic answers (the end-push job substitutes from the same cache)."""
    state.mkdir(parents=True, exist_ok=True)
    netrc = state / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login ci password {lab.token}\n")
    netrc.chmod(0o600)
    (state / "substituter").write_text(f"{lab.cache.substituter(CACHE)} {lab.key.public}\n")
    (state / "token").write_text(lab.token + "\n")
    (state / "token").chmod(0o600)
    config = state / "config" / "attic"
    config.mkdir(parents=True)
    (config / "config.toml").write_text(
        f'default-server = "flywheel"\n\n[servers.flywheel]\nendpoint = "{lab.cache.url}"\n'
        f'token-file = "{state / "token"}"\n'
    )


def run_job(variant: str, lab: AtticLab, chain: nix_lab.Chain, work: Path) -> tuple[Phase, float]:
    """One CI job building ``chain``; returns the build phase and the whole job's wall time."""
    work.mkdir(parents=True)
    state = work / "state"
    env = lab.job_env(work / "home", GREEDY_NIX_INSTALLABLE=chain.installable)
    env.update(template_variables({"attic-client-ref": lab.client_ref, "fallback-client-ref": lab.client_ref}, state))
    if variant == "watch-store":
        started = bootstrap(env, work)
        try:
            build = run_phase(job_script(), env, work)
        finally:
            stopped = teardown(env, work)
        return build, started.seconds + build.seconds + stopped.seconds
    substituter_conf(lab, state)
    client = shlex.quote(f"{lab.client_path}/bin/attic")
    push = f'XDG_CONFIG_HOME="$GREEDY_ATTIC_STATE_DIR/config" {client} push "flywheel:$ATTIC_CACHE" ./result'
    build = run_phase(build_only_script(), env, work)
    job = build.seconds
    if build.returncode == 0:
        job += run_phase(push, env, work).seconds
    return build, job


def pushed_links(lab: AtticLab, seed: str) -> int:
    pattern = re.compile(rf"^StorePath: /nix/store/[^\n]*-lab-{seed}-link\d+$", re.MULTILINE)
    return sum(1 for f in lab.cache.cache_dir(CACHE).glob("*.narinfo") if pattern.search(f.read_text()))


def forget_chain(lab: AtticLab, seed: str, patience: float = 30.0) -> None:
    """Delete the chain's outputs from the local store: the next run lands on a fresh runner.

    A path stays "alive" while a process still has it open (e.g. a last ``nix copy`` of the watcher
    finishing), so a refusal is retried for a while before it counts as a failure.
    """
    deadline = time.monotonic() + patience
    while True:
        outputs = [str(p) for p in Path("/nix/store").glob(f"*-lab-{seed}-link*") if p.suffix != ".drv"]
        try:
            nix_lab.delete_paths(outputs, lab.env)
            return
        except nix_lab.NixError as err:
            if "still alive" not in str(err) or time.monotonic() > deadline:
                raise
        time.sleep(0.5)


def run_pair(variant: str, lab: AtticLab, params: ChainParams, work: Path) -> SecondRun:
    seed = secrets.token_hex(4)
    failing = nix_lab.write_chain(
        work / "chain-failing", params.length, seed=seed, fail_at=params.completed + 1, seconds=params.seconds
    )
    fixed = nix_lab.write_chain(work / "chain-fixed", params.length, seed=seed, seconds=params.seconds)
    first, _ = run_job(variant, lab, failing, work / "run1")
    if first.returncode == 0 or built_links(first.output, seed) != list(range(1, params.completed + 2)):
        raise RuntimeError(f"run 1 should build links 1..{params.completed + 1} and fail:\n{first.output[-3000:]}")
    pushed = pushed_links(lab, seed)
    forget_chain(lab, seed)
    second, job_seconds = run_job(variant, lab, fixed, work / "run2")
    if second.returncode != 0:
        raise RuntimeError(f"run 2 failed:\n{second.output[-3000:]}")
    rebuilt = len(built_links(second.output, seed))
    for link in (work / "run2").glob("result*"):  # GC roots of the build
        link.unlink()
    forget_chain(lab, seed)
    return SecondRun(rebuilt, pushed, second.seconds, job_seconds)


def run(context: BenchContext, overrides: dict[str, str] | None = None) -> BenchResult:
    params = ChainParams()
    if context.quick:
        params = ChainParams(length=6, completed=4, seconds=0.2)
    params = with_overrides(params, overrides or {}, "resumability")
    runs: dict[str, list[SecondRun]] = {v: [] for v in VARIANTS}
    with attic_lab(context.work / "lab") as lab:
        for repetition in range(context.repetitions):
            for variant in VARIANTS:
                pair_dir = context.work / f"{variant}-{repetition}"
                runs[variant].append(run_pair(variant, lab, params, pair_dir))
                shutil.rmtree(pair_dir, ignore_errors=True)

    n, k = params.length, params.completed
    rows = []
    data = {}
    for variant in VARIANTS:
        rebuilt = Summary.of([r.rebuilt for r in runs[variant]])
        pushed = Summary.of([r.pushed_by_first for r in runs[variant]])
        build = Summary.of([r.build_seconds for r in runs[variant]])
        job = Summary.of([r.job_seconds for r in runs[variant]])
        rows.append((variant, pushed.text("", 0), rebuilt.text("", 0), build.text("s"), job.text("s")))
        data[variant] = {
            "pushed_by_failed_run": pushed.to_json(),
            "rebuilt": rebuilt.to_json(),
            "build_seconds": build.to_json(),
            "job_seconds": job.to_json(),
        }
    watch, end = data["watch-store"], data["end-push"]
    targets = [
        Target(
            f"derivations rebuilt after the failure, watch-store (N − k = {n - k})",
            watch["rebuilt"]["median"],
            n - k,
            "derivations",
        ),
    ]
    notes = [
        f"The second run of the end-push job rebuilt {end['rebuilt']['median']:.0f} of {n} derivations "
        f"(expected N = {n}); watch-store's second run took "
        f"{watch['job_seconds']['median']:.1f} s against {end['job_seconds']['median']:.1f} s for the whole job.",
    ]
    return BenchResult(
        name="resumability",
        title="Resumability: a failed build's work, watch-store vs one push at the end (real Nix)",
        method=(
            f"A chain of N = {n} derivations ({params.seconds:g} s each) whose derivation k + 1 = {k + 1} fails; "
            f"then the fixed chain on a fresh local store. {context.repetitions} pair(s) of runs per variant. "
            "watch-store runs the template's bootstrap, build script and teardown with the STAND-IN attic client; "
            "end-push runs the same build and one push after success."
        ),
        tables=[
            Table(
                (
                    "variant",
                    "paths pushed by the failed run",
                    "derivations rebuilt in run 2",
                    "run 2: build",
                    "run 2: whole job",
                ),
                tuple(rows),
            )
        ],
        targets=targets,
        notes=notes,
        data={"params": dataclasses.asdict(params), **data},
        quick=context.quick,
    )
