"""Part 2: the time the template's bootstrap (before_script) adds to a job, with real Nix.

Runs the real components/templates/attic-bootstrap.sh and attic-teardown.sh in bash with the variables
of the rendered ``.greedy-attic`` job, against the loopback Attic stand-in (tools/nix_lab.py):

- (a) the client is substitutable: not in the local store, served by a loopback cache that plays
  cache.nixos.org for the first client ref (a2: the first ref is the real github: ref, unreachable
  offline, and the client comes from the Attic cache through the fallback ref);
- (b) nothing is substitutable offline: the github: ref cannot be reached and the Attic cache does not
  have the client;
- (c) the Attic endpoint accepts TCP and never answers;
- (d) the client is already in the local store (a runner with a persistent store): the bootstrap beyond its
  endpoint probe, and a teardown with nothing left to push.

Then the cost of an Attic that dies mid-build: the template's job (bootstrap, pre-pass, build, teardown) on a
chain whose Attic stops answering (hangs) right after the bootstrap or mid-build, against the same build without Attic.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from components.config import CiTemplateConfig
from tools import nix_lab
from tools.bench.attic_lab import (
    AtticLab,
    attic_lab,
    bootstrap,
    run_phase,
    status_of,
    teardown,
    template_jobs,
    template_variables,
)
from tools.bench.results import BenchContext, BenchResult, Table, Target
from tools.bench.stats import Summary

OFFLINE_REF = CiTemplateConfig().attic_client_ref  # github:NixOS/nixpkgs/... : unreachable on this machine
EMPTY_CACHE = "empty"


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    limit: float | None
    expect_publishing: bool


SCENARIOS = (
    Scenario("a", "(a) client substitutable (first ref, from a loopback upstream cache)", 5.0, True),
    Scenario("a2", "(a2) first ref unreachable offline, client from the Attic cache (fallback ref)", None, True),
    Scenario("b", "(b) nothing substitutable offline", 15.0, False),
    Scenario("c", "(c) endpoint accepts TCP, never answers", 15.0, False),
    Scenario("d", "(d) client already in the local store", None, True),
)
BEYOND_PROBE_LIMIT = 0.5  # seconds the bootstrap may add to its endpoint probe when the client is local
EMPTY_TEARDOWN_LIMIT = 0.5  # seconds of a teardown with nothing left to push
PROBE = re.compile(r"answers \(probe (\d+) ms\)")


@dataclass(frozen=True)
class Run:
    bootstrap: float
    teardown: float
    status: str
    probe: float | None = None


def run_scenario(scenario: Scenario, lab: AtticLab, hanging: nix_lab.LoopbackCache, work: Path) -> Run:
    home = work / "home"
    state = work / "state"
    first, fallback = lab.client_ref, lab.client_ref
    env = lab.job_env(home)
    if scenario.key == "a":
        env = lab.with_upstream(env)
    elif scenario.key == "a2":
        first = OFFLINE_REF
    elif scenario.key == "b":
        first = OFFLINE_REF
        env["ATTIC_CACHE"] = EMPTY_CACHE
    elif scenario.key == "c":
        env["ATTIC_SERVER"] = hanging.url
    inputs = {"attic-client-ref": first, "fallback-client-ref": fallback}
    env.update(template_variables(inputs, state))
    if scenario.key == "d":
        lab.restore_client()
    else:
        lab.forget_client()
    try:
        started = bootstrap(env, work)
        status = status_of(state)
    finally:
        stopped = teardown(env, work)
        _kill_watcher(state)
    probe = PROBE.search(started.output)
    shutil.rmtree(state, ignore_errors=True)  # drops the client's out-link (GC root)
    shutil.rmtree(home, ignore_errors=True)
    if started.returncode != 0 or stopped.returncode != 0:
        raise RuntimeError(f"bootstrap/teardown exited non-zero in {scenario.title}:\n{started.output}")
    if status.startswith("publishing") != scenario.expect_publishing:
        raise RuntimeError(f"{scenario.title}: unexpected bootstrap status {status!r}:\n{started.output}")
    return Run(started.seconds, stopped.seconds, status, int(probe.group(1)) / 1000 if probe else None)


def _kill_watcher(state: Path) -> None:
    # The teardown stops the watcher; this only guards against leaving one behind if it could not.
    try:
        pid = int((state / "watch-store.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        pass


def run(context: BenchContext) -> BenchResult:
    runs: dict[str, list[Run]] = {s.key: [] for s in SCENARIOS}
    with (
        attic_lab(context.work / "lab") as lab,
        nix_lab.loopback_cache(context.work / "hanging", token=lab.token, mode="hang") as hanging,
    ):
        lab.cache.cache_dir(EMPTY_CACHE)
        for repetition in range(context.repetitions):
            for scenario in SCENARIOS:
                run_dir = context.work / f"{scenario.key}-{repetition}"
                run_dir.mkdir()
                runs[scenario.key].append(run_scenario(scenario, lab, hanging, run_dir))
        dying = {
            when: [run_dying_attic(lab, context.work / f"dying-{key}-{r}", key) for r in range(context.repetitions)]
            for key, when in DYING_WHEN.items()
        }

    rows = []
    targets = []
    data = {}
    for scenario in SCENARIOS:
        boot = Summary.of([r.bootstrap for r in runs[scenario.key]])
        down = Summary.of([r.teardown for r in runs[scenario.key]])
        total = Summary.of([r.bootstrap + r.teardown for r in runs[scenario.key]])
        status = runs[scenario.key][0].status
        limit = f"< {scenario.limit:g} s" if scenario.limit else "—"
        rows.append((scenario.title, boot.text("s"), down.text("s"), total.text("s"), limit, _short(status)))
        if scenario.limit is not None:
            targets.append(Target(f"bootstrap {scenario.title}", boot.median, scenario.limit, "s"))
        data[scenario.key] = {
            "bootstrap_seconds": boot.to_json(),
            "teardown_seconds": down.to_json(),
            "status": status,
        }
        if scenario.key == "d":
            beyond = Summary.of([r.bootstrap - (r.probe or 0.0) for r in runs["d"]])
            targets.append(Target("bootstrap (d) beyond the endpoint probe", beyond.median, BEYOND_PROBE_LIMIT, "s"))
            targets.append(Target("teardown (d) with nothing left to push", down.median, EMPTY_TEARDOWN_LIMIT, "s"))
            data["d"]["beyond_probe_seconds"] = beyond.to_json()
            rows.append(("(d) bootstrap beyond the endpoint probe", beyond.text("s"), "—", "—", "≤ 0.5 s", ""))
    config = CiTemplateConfig()
    dying_rows = []
    for key, when in DYING_WHEN.items():
        with_dead = Summary.of([d.job for d in dying[when]])
        plain = Summary.of([d.plain for d in dying[when]])
        extra = Summary.of([d.job - d.plain for d in dying[when]])
        data[f"attic_dies_{key.replace('-', '_')}"] = {
            "job_seconds": with_dead.to_json(),
            "plain_build_seconds": plain.to_json(),
            "extra_seconds": extra.to_json(),
        }
        dying_rows.append((f"Attic hangs {when}", with_dead.text("s"), plain.text("s"), extra.text("s")))
    dying_table = Table(
        ("job", "whole job (bootstrap, pre-pass, build, teardown)", "plain nix build", "cost of the dead Attic"),
        tuple(dying_rows),
    )
    return BenchResult(
        name="bootstrap",
        title="Bootstrap overhead of the greedy template (real Nix)",
        method=(
            f"The real attic-bootstrap.sh and attic-teardown.sh in bash with the rendered job's variables "
            f"(connect {config.connect_timeout_seconds} s, stalled download {config.stalled_download_timeout_seconds}"
            f" s), {context.repetitions} run(s) per scenario, the client deleted from the local store before each; "
            "the cache is the loopback stand-in of tools/nix_lab.py, the client the STAND-IN attic client."
        ),
        tables=[
            Table(("scenario", "bootstrap", "teardown", "bootstrap + teardown", "target", "status"), tuple(rows)),
            dying_table,
        ],
        targets=targets,
        notes=[
            "The stand-in client is one small store path; the real attic-client closure is tens of MiB, whose "
            "download time from a real cache comes on top of (a) and (a2).",
            "(b) and (c) end with 'cache publication skipped' and the build goes on; (a), (a2) and (d) start "
            "`attic watch-store`, which the teardown stops at once, then pushes what is new since the bootstrap "
            "(here nothing: no build ran).",
            f"Attic dead from the start of the build costs the job one stalled pre-pass (connect "
            f"{config.connect_timeout_seconds} s, stall {config.stalled_download_timeout_seconds} s, one attempt) "
            "and the teardown's probe; dying mid-build (once the first of 4 derivations is in the store, the "
            "watcher uploading) costs only the teardown's probe: the build itself never talks to Attic, and the "
            "watcher's stuck uploads end with it.",
        ],
        data=data,
        quick=context.quick,
    )


@dataclass(frozen=True)
class Dying:
    job: float
    plain: float


DYING_WHEN = {"after-bootstrap": "right after the bootstrap", "mid-build": "mid-build (link 1 of 4 built)"}


def run_dying_attic(lab: AtticLab, work: Path, when: str) -> Dying:
    """The template's job with Attic hanging from ``when`` on (a DYING_WHEN key); and the same build alone."""
    work.mkdir(parents=True)
    chain = nix_lab.write_chain(work / "chain", 4, seconds=1.0)
    state = work / "state"
    env = lab.job_env(work / "home", GREEDY_NIX_INSTALLABLE=chain.installable)
    env.update(template_variables({"attic-client-ref": lab.client_ref, "fallback-client-ref": lab.client_ref}, state))
    first = nix_lab.chain_out_paths(chain, env, upto=1)[0]
    with nix_lab.loopback_cache(work / "dying", token=lab.token) as dying:
        dying.cache_dir("main")
        env["ATTIC_SERVER"] = dying.url
        started = bootstrap(env, work)
        if when == "after-bootstrap":
            dying.set_mode("hang")
            killer = None
        else:
            killer = threading.Thread(target=_hang_once_built, args=(dying, Path(first)), daemon=True)
            killer.start()
        script = run_phase("\n".join(template_jobs()["greedy:nix-build"]["script"]), env, work)
        if killer is not None:
            killer.join(timeout=1)
            if dying.mode != "hang":
                raise RuntimeError("the build ended before its first derivation was in the store")
        stopped = teardown(env, work)
        _kill_watcher(state)
    if script.returncode != 0:
        raise RuntimeError(f"the build failed on a dead Attic:\n{script.output[-3000:]}")
    twin = nix_lab.write_chain(work / "twin", 4, seconds=1.0)
    plain = run_phase(f"nix build --no-link {twin.installable}", lab.job_env(work / "twin-home"), work)
    for link in work.glob("result*"):
        link.unlink()
    shutil.rmtree(state, ignore_errors=True)
    return Dying(started.seconds + script.seconds + stopped.seconds, plain.seconds)


def _hang_once_built(cache: nix_lab.LoopbackCache, path: Path, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    cache.set_mode("hang")


def _short(status: str) -> str:
    return status if len(status) <= 60 else status[:57] + "..."
