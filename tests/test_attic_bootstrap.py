"""The attic bootstrap and teardown (components/templates/*.sh), run for real: bash, real Nix, a real store.

What is a stand-in: the Attic server is ``nix_lab.LoopbackCache`` (an HTTP binary cache accepting
uploads, with Attic's URL shape and token check), the attic client is the STAND-IN built by
``nix_lab.build_standin_attic_client`` (login / watch-store / push over ``nix copy``), and a second
loopback cache plays cache.nixos.org (the runner's default substituter). Network access is cut with a
refusing HTTPS proxy, so ``github:`` refs fail the way they do on an offline runner.

Every job runs like ``greedy:nix-build``: bootstrap (before_script), ``nix build`` (script), teardown
(after_script); ``nix_lab.run_greedy_job``. Timing bounds are generous (2 cores, other suites running)
but each is well below what the unbounded behaviour would take (Nix's defaults: 300 s per stalled
download, 5 attempts).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.config import CiTemplateConfig
from tests.conftest import require_tool
from tools import nix_lab
from tools.nix_lab import Chain, JobRun, LoopbackCache, SigningKey

pytestmark = pytest.mark.slow

CACHE = "main"
CONNECT_TIMEOUT = 2
STALLED_TIMEOUT = 2
CLIENT_FETCH_TIMEOUT = 20
DRAIN_TIMEOUT = 4
PUSH_TIMEOUT = 10
QUIET_SECONDS = 1
# Slack for process start-up and the machine being busy; the bounds below are sums of the scripts' own timeouts.
SLACK = 4.0
# A fault Nix sees at once (a refused connection, a 401, an offline github: ref) costs the bootstrap well under
# a second (measured 0.1-0.3 s). Without `--option download-attempts 1` Nix retries 4 times with a back-off of
# at least 250 ms x (1 + 2 + 4 + 8) = 3.75 s (measured 4.0-4.6 s), which this bound catches.
ANSWERED_AT_ONCE = 3.0


@dataclass
class Lab:
    tmp: Path
    admin_env: dict[str, str]
    attic: LoopbackCache
    upstream: LoopbackCache
    attic_key: SigningKey
    upstream_key: SigningKey
    token: str
    client: str
    client_flake: Path

    @property
    def client_ref(self) -> str:
        return f"path:{self.client_flake}#attic-client"

    def job_env(self, name: str, **variables: str) -> dict[str, str]:
        """The environment of one job: runner defaults (the upstream cache), group variables, template variables."""
        env = nix_lab.nix_env(self.tmp / f"{name}-home")
        env["NIX_CONFIG"] = (
            f"{nix_lab.EXPERIMENTAL}\n"
            f"substituters = {self.upstream.substituter('nixos')}\n"
            f"trusted-public-keys = {self.upstream_key.public}"
        )
        refusing = f"http://127.0.0.1:{nix_lab.free_port()}"  # no network: every https URL is refused
        env.update(
            https_proxy=refusing,
            HTTPS_PROXY=refusing,
            no_proxy="127.0.0.1,localhost",
            ATTIC_SERVER=self.attic.url,
            ATTIC_CACHE=CACHE,
            ATTIC_PUBLIC_KEY=self.attic_key.public,
            ATTIC_TOKEN=self.token,
            GREEDY_ATTIC_CLIENT_REF=self.client_ref,
            GREEDY_ATTIC_FALLBACK_CLIENT_REF=".#attic-client",
            GREEDY_ATTIC_CONNECT_TIMEOUT=str(CONNECT_TIMEOUT),
            GREEDY_ATTIC_STALLED_DOWNLOAD_TIMEOUT=str(STALLED_TIMEOUT),
            GREEDY_ATTIC_CLIENT_FETCH_TIMEOUT=str(CLIENT_FETCH_TIMEOUT),
            GREEDY_ATTIC_DRAIN_TIMEOUT=str(DRAIN_TIMEOUT),
            GREEDY_ATTIC_PUSH_TIMEOUT=str(PUSH_TIMEOUT),
            GREEDY_ATTIC_QUIET_SECONDS=str(QUIET_SECONDS),
        )
        env.update(variables)
        return env

    def run(self, name: str, chain: Chain, **variables: str) -> JobRun:
        return nix_lab.run_greedy_job(
            chain.installable, self.job_env(name, **variables), self.tmp / f"{name}-state", self.tmp / f"{name}-project"
        )

    def plain_build_exit_code(self, chain: Chain) -> int:
        """What ``nix build`` alone returns for a chain of the same shape (fresh seed, no cache machinery)."""
        twin = nix_lab.write_chain(self.tmp / f"twin-{chain.seed}", chain.length, fail_at=chain.fail_at)
        env = self.job_env(f"twin-{chain.seed}")
        return nix_lab.run_nix(["build", "--no-link", twin.installable], env, check=False).returncode

    def restore_client(self) -> None:
        """Substitute the client back from the upstream cache into the local store."""
        substitute = ["--option", "substituters", self.upstream.substituter("nixos")]
        trust = ["--option", "trusted-public-keys", self.upstream_key.public]
        nix_lab.run_nix(["build", "--no-link", "--max-jobs", "0", self.client, *substitute, *trust], self.admin_env)

    def in_cache(self, paths: list[str]) -> list[bool]:
        return [self.attic.has(CACHE, p) for p in paths]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with open_lab(tmp_path) as opened:
        yield opened


@contextlib.contextmanager
def open_lab(tmp_path: Path) -> Iterator[Lab]:
    """The stand-in Attic (with a token), a stand-in upstream cache holding the client, real Nix."""
    require_tool("nix")
    require_tool("bash")
    admin_env = nix_lab.nix_env(tmp_path / "admin-home")
    attic_key = nix_lab.make_signing_key(tmp_path / "keys", "attic-lab-1")
    upstream_key = nix_lab.make_signing_key(tmp_path / "keys", "upstream-lab-1")
    token = "eyJhbGciOiJSUzI1NiJ9.fake-flywheel-token." + secrets.token_hex(12)
    client_flake = tmp_path / "client"
    client = nix_lab.build_standin_attic_client(client_flake, admin_env, signing_key=attic_key)
    with LoopbackCache(tmp_path / "attic", token=token) as attic, LoopbackCache(tmp_path / "upstream") as upstream:
        attic.cache_dir(CACHE)
        nix_lab.copy_to_cache([client], upstream.cache_dir("nixos"), upstream_key, admin_env)
        nix_lab.delete_paths([client], admin_env)  # a fresh runner: the client is not in the store
        try:
            yield Lab(tmp_path, admin_env, attic, upstream, attic_key, upstream_key, token, client, client_flake)
        finally:
            _kill_leftover_watchers(tmp_path)


def _kill_leftover_watchers(root: Path) -> None:
    """A test that fails before its teardown must not leave a stand-in watcher running."""
    for pid_file in root.glob("*/watch-store.pid"):
        pid = int(pid_file.read_text())
        if _pid_alive(pid) and "watch-store" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
            os.kill(pid, signal.SIGKILL)


def _lines(output: str, needle: str) -> list[str]:
    return [line for line in output.splitlines() if needle in line]


def _report(name: str, run: JobRun) -> None:
    print(
        f"\nMEASURED {name}: bootstrap {run.bootstrap.seconds:.2f} s, build {run.build.seconds:.2f} s, "
        f"teardown {run.teardown.seconds:.2f} s, overhead {run.overhead:.2f} s"
    )


def _assert_token_secret(lab: Lab, run: JobRun) -> None:
    assert lab.token not in run.log
    assert lab.token not in run.state_files_text()
    assert not (run.state / "netrc").exists(), "the teardown removes the netrc holding the token"
    assert not (run.state / "config").exists(), "the teardown removes the attic login holding the token"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by init in this container) counts as gone
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ", 1)[-1].startswith(("R", "S", "D"))


# --- the happy path -----------------------------------------------------------------------------------


def test_client_is_substituted_and_each_derivation_reaches_the_cache_during_the_build(lab: Lab) -> None:
    chain = nix_lab.write_chain(lab.tmp / "chain", 4, seconds=1.5)
    run = lab.run("happy", chain)
    _report("happy path", run)
    outs = nix_lab.chain_out_paths(chain, lab.admin_env)

    assert run.bootstrap.exit_code == 0 and run.build.exit_code == 0 and run.teardown.exit_code == 0, run.log
    # substituted from the upstream cache, never built (--max-jobs 0)
    client_narinfo = f"/nixos/{nix_lab.narinfo_name(lab.client)}"
    assert any(r.path == client_narinfo and r.status == 200 for r in lab.upstream.requests), run.log
    assert _lines(run.bootstrap.output, "attic client from path:") and "substituted" in run.bootstrap.output
    assert "building" not in run.bootstrap.output
    assert nix_lab.is_valid(lab.client, lab.admin_env)
    # the watcher ran in the background and the status said so
    assert (run.state / "status").read_text().strip() == "publishing"
    assert _lines(run.bootstrap.output, "publishing: attic watch-store (pid")
    assert not _lines(run.bootstrap.output, "ignores ATTIC_LOGIN_TOKEN"), "the token went in through the environment"
    # every link but the last reached the cache while the build was still running
    put_times = [lab.attic.narinfo_put_time(CACHE, p) for p in outs]
    assert all(t is not None for t in put_times), (put_times, run.log)
    for index, put_time in enumerate(put_times[:-1], start=1):
        assert put_time is not None and put_time < run.build.ended, f"link{index} only arrived after the build"
    # and the teardown drained the watcher and pushed the result closure
    watch_log = (run.state / "watch-store.log").read_text()
    assert "queue drained" in watch_log
    assert _lines(run.teardown.output, "attic watch-store stopped after")
    assert _lines(run.teardown.output, f"pushed the result closure to {CACHE}: 4 paths")
    watcher = int((run.state / "watch-store.pid").read_text())
    assert not _pid_alive(watcher)
    _assert_token_secret(lab, run)
    # the whole machinery costs a few seconds, not minutes
    assert run.bootstrap.seconds < 1 + 5 + SLACK
    assert run.teardown.seconds < QUIET_SECONDS + 2 + SLACK


def test_fallback_ref_is_substituted_from_attic_with_its_key_and_token(lab: Lab) -> None:
    """The first ref is an offline github: ref; the client exists only in Attic, behind the token.

    The runner trusts no key and has no substituter of its own here, so the client can only come from
    Attic with the ATTIC_PUBLIC_KEY and the netrc the bootstrap hands to Nix.
    """
    lab.restore_client()
    nix_lab.copy_to_cache([lab.client], lab.attic.cache_dir(CACHE), lab.attic_key, lab.admin_env)
    nix_lab.delete_paths([lab.client], lab.admin_env)
    chain = nix_lab.write_chain(lab.tmp / "chain", 2)
    github_token = "ghp_fakeflywheel" + secrets.token_hex(8)
    run = lab.run(
        "fallback",
        chain,
        GREEDY_ATTIC_CLIENT_REF=CiTemplateConfig().attic_client_ref,
        GREEDY_ATTIC_FALLBACK_CLIENT_REF=lab.client_ref,
        GITHUB_TOKEN=github_token,
        NIX_CONFIG=f"{nix_lab.EXPERIMENTAL}\nsubstituters =\ntrusted-public-keys =",
    )
    _report("fallback ref", run)
    assert run.build.exit_code == 0, run.log
    assert _lines(run.bootstrap.output, "attic client not available from github:NixOS/nixpkgs")
    assert _lines(run.bootstrap.output, f"attic client from {lab.client_ref}")
    client_narinfo = f"/{CACHE}/{nix_lab.narinfo_name(lab.client)}"
    assert any(r.path == client_narinfo and r.status == 200 for r in lab.attic.requests), "fetched with the token"
    assert (run.state / "status").read_text().strip() == "publishing"
    assert all(lab.in_cache(nix_lab.chain_out_paths(chain, lab.admin_env)))
    assert run.bootstrap.seconds < 1 + 5 + SLACK
    _assert_token_secret(lab, run)
    assert github_token not in run.log and github_token not in run.state_files_text()


def test_client_without_login_token_env_support_still_publishes(lab: Lab) -> None:
    """An attic client that ignores ATTIC_LOGIN_TOKEN gets the token as an argument (never in the log)."""
    chain = nix_lab.write_chain(lab.tmp / "chain", 1)
    run = lab.run("old-login", chain, STANDIN_ATTIC_FAULT="old-login")
    assert run.build.exit_code == 0, run.log
    assert _lines(run.bootstrap.output, "ignores ATTIC_LOGIN_TOKEN: logged in with the token as an argument")
    assert all(lab.in_cache(nix_lab.chain_out_paths(chain, lab.admin_env)))
    _assert_token_secret(lab, run)


def test_offline_github_ref_and_absent_fallback_skip_publication_at_once(lab: Lab) -> None:
    """The default client ref on an offline runner, and a repository without `.#attic-client`."""
    github_token = "ghp_fakeflywheel" + secrets.token_hex(8)
    for outcome, fail_at in (("passing", None), ("failing", 2)):
        chain = nix_lab.write_chain(lab.tmp / f"chain-{outcome}", 3, fail_at=fail_at)
        run = lab.run(
            f"offline-{outcome}",
            chain,
            GREEDY_ATTIC_CLIENT_REF=CiTemplateConfig().attic_client_ref,
            GITHUB_TOKEN=github_token,
        )
        _report(f"offline github ref + absent fallback ({outcome} build)", run)
        skipped = _lines(run.bootstrap.output, "cache publication skipped")
        assert len(skipped) == 1, run.bootstrap.output
        assert "no attic client could be substituted from github:NixOS/nixpkgs" in skipped[0]
        assert ".#attic-client" in skipped[0]
        assert run.build.exit_code == lab.plain_build_exit_code(chain) == (0 if fail_at is None else 1)
        assert run.bootstrap.exit_code == 0 and run.teardown.exit_code == 0
        assert run.overhead < ANSWERED_AT_ONCE, f"skipping publication took {run.overhead:.1f} s"
        assert github_token not in run.log and lab.token not in run.log
        assert _lines(run.teardown.output, "nothing to publish (skipped: no attic client")


# --- faults of the endpoint and of the watcher -----------------------------------------------------------


@pytest.mark.parametrize("mode", ["refuse", "hang", "unauthorized"])
def test_endpoint_fault_leaves_the_build_exit_code_and_costs_seconds(lab: Lab, mode: nix_lab.CacheMode) -> None:
    lab.attic.set_mode(mode)
    chain = nix_lab.write_chain(lab.tmp / "chain", 3, fail_at=3)
    run = lab.run(f"endpoint-{mode}", chain)
    _report(f"endpoint {mode}", run)
    assert run.build.exit_code == lab.plain_build_exit_code(chain) == 1, run.log
    assert run.bootstrap.exit_code == 0 and run.teardown.exit_code == 0
    skipped = _lines(run.bootstrap.output, "cache publication skipped")
    assert len(skipped) == 1 and "does not answer" in skipped[0], run.bootstrap.output
    assert (run.state / "nix.conf").read_text() == "", "an unusable Attic is not added as a substituter"
    # a hanging endpoint costs the probe's own bound; a refusal or a 401 answers at once
    bound = CONNECT_TIMEOUT + STALLED_TIMEOUT + 2 + SLACK if mode == "hang" else ANSWERED_AT_ONCE
    assert run.overhead < bound, f"{mode}: {run.overhead:.1f} s"
    assert lab.token not in run.log


def test_endpoint_that_starts_hanging_after_the_bootstrap_costs_a_bounded_stall(lab: Lab) -> None:
    """Attic answers the bootstrap's probe, then hangs before the build.

    The build still succeeds: the substituter settings the bootstrap wrote bound Nix's stall
    (download-attempts x stalled-download-timeout, once per nix invocation, then Nix disables the
    substituter) and fallback = true. The teardown notices, stops the watcher, skips the push.
    """
    chain = nix_lab.write_chain(lab.tmp / "chain", 2, fail_at=2)
    env = lab.job_env("midbuild-hang")
    state, project = lab.tmp / "midbuild-state", lab.tmp / "midbuild-project"
    project.mkdir()
    job_env = {**env, "GREEDY_ATTIC_STATE_DIR": str(state), "CI_PROJECT_DIR": str(project)}
    boot = subprocess.run(["bash", str(nix_lab.BOOTSTRAP_SCRIPT)], env=job_env, capture_output=True, text=True)
    assert "publishing" in boot.stdout, boot.stdout
    lab.attic.set_mode("hang")
    build_env = {
        **job_env,
        "NIX_CONFIG": f"{job_env['NIX_CONFIG']}\n!include {state}/nix.conf",
        "GREEDY_NIX_INSTALLABLE": chain.installable,
    }
    started = time.monotonic()
    build = subprocess.run(["bash", str(nix_lab.NIX_BUILD_SCRIPT)], env=build_env, cwd=project, capture_output=True)
    build_seconds = time.monotonic() - started
    assert build.returncode == lab.plain_build_exit_code(chain) == 1, build.stdout.decode(errors="replace")
    started = time.monotonic()
    teardown = subprocess.run(["bash", str(nix_lab.TEARDOWN_SCRIPT)], env=job_env, capture_output=True, text=True)
    teardown_seconds = time.monotonic() - started
    print(
        f"\nMEASURED endpoint hangs after the bootstrap (connect/stall timeouts {CONNECT_TIMEOUT}/{STALLED_TIMEOUT} s):"
        f" build {build_seconds:.2f} s (stall included), teardown {teardown_seconds:.2f} s"
    )
    nix_default_attempts, nix_backoff = 5, 4  # Nix's download-attempts; its retry back-off sums to ~4 s
    # (x2: Nix 2.8 sometimes aborts on the disabled substituter; nix-build.sh then builds once more without it)
    assert build_seconds < 2 * (nix_default_attempts * STALLED_TIMEOUT + nix_backoff * 1.5) + SLACK
    assert teardown.returncode == 0
    assert _lines(teardown.stdout, "does not answer now: stopping the watcher without draining, skipping the push")
    assert teardown_seconds < (CONNECT_TIMEOUT + STALLED_TIMEOUT + 2) + 2 + SLACK, teardown.stdout
    assert not _pid_alive(int((state / "watch-store.pid").read_text()))


def test_build_that_fails_on_a_dead_attic_is_built_once_more_without_it(lab: Lab, tmp_path: Path) -> None:
    """nix-build.sh's retry. The first failure is FAKED by a `nix` wrapper on PATH that prints the error
    Nix 2.8 aborts with when a substituter dies mid-run (not reproducible on demand); the rest is real."""
    chain = nix_lab.write_chain(lab.tmp / "chain", 2)
    env = lab.job_env("retry")
    state, project = lab.tmp / "retry-state", lab.tmp / "retry-project"
    project.mkdir()
    job_env = {**env, "GREEDY_ATTIC_STATE_DIR": str(state), "CI_PROJECT_DIR": str(project)}
    subprocess.run(["bash", str(nix_lab.BOOTSTRAP_SCRIPT)], env=job_env, check=True, capture_output=True)
    assert (state / "nix.conf").read_text(), "Attic is a substituter"
    fake_bin = tmp_path / "fake-bin"
    fake_bin.mkdir()
    real_nix = require_tool("nix")
    first = tmp_path / "first-build-done"
    (fake_bin / "nix").write_text(
        "#!/bin/sh\n"
        f'if [ ! -e {first} ]; then touch {first}; printf "%s\\n" '
        f"\"terminate called after throwing an instance of 'nix::SubstituterDisabled'\" "
        f"\"  what():  error: substituter '{lab.attic.substituter(CACHE)}' is disabled\" >&2; exit 134; fi\n"
        f'exec {real_nix} "$@"\n'
    )
    (fake_bin / "nix").chmod(0o755)
    lab.attic.set_mode("refuse")
    build_env = {
        **job_env,
        "PATH": f"{fake_bin}:{job_env['PATH']}",
        "NIX_CONFIG": f"{job_env['NIX_CONFIG']}\n!include {state}/nix.conf",
        "GREEDY_NIX_INSTALLABLE": chain.installable,
    }
    build = subprocess.run(["bash", str(nix_lab.NIX_BUILD_SCRIPT)], env=build_env, cwd=project, capture_output=True)
    output = build.stdout.decode(errors="replace")
    assert build.returncode == 0, output
    assert _lines(output, "failed (exit 134) on the Attic cache, which no longer answers: building once more")
    assert (state / "nix.conf").read_text() == "", "the retry runs without the Attic substituter"
    assert (project / "result").is_symlink()
    teardown = subprocess.run(["bash", str(nix_lab.TEARDOWN_SCRIPT)], env=job_env, capture_output=True, text=True)
    assert _lines(teardown.stdout, "does not answer now"), teardown.stdout


def test_build_failure_of_its_own_is_not_retried(lab: Lab) -> None:
    chain = nix_lab.write_chain(lab.tmp / "chain", 2, fail_at=1)
    lab.attic.set_mode("normal")
    run = lab.run("own-failure", chain)
    assert run.build.exit_code == 1
    assert not _lines(run.build.output, "building once more")
    assert len(_lines(run.build.output, "planned failure of")) == 1


def test_watcher_crashing_mid_build_is_covered_by_the_final_push(lab: Lab) -> None:
    chain = nix_lab.write_chain(lab.tmp / "chain", 3, seconds=1.0)
    fault = f"crash-after-push:lab-{chain.seed}-link1"  # dies right after pushing link 1
    run = lab.run("watcher-crash", chain, STANDIN_ATTIC_FAULT=fault)
    _report("watcher crashes mid-build", run)
    assert run.build.exit_code == lab.plain_build_exit_code(chain) == 0, run.log
    assert run.teardown.exit_code == 0
    assert _lines(run.teardown.output, "attic watch-store had already exited (crashed?)")
    outs = nix_lab.chain_out_paths(chain, lab.admin_env)
    pushed_by_watcher = [t for t in (lab.attic.narinfo_put_time(CACHE, p) for p in outs) if t and t < run.build.ended]
    assert len(pushed_by_watcher) == 1, "the watcher pushed one path, then died"
    assert all(lab.in_cache(outs)), "the teardown's push of the result closure covers what the watcher missed"
    assert run.teardown.seconds < (CONNECT_TIMEOUT + STALLED_TIMEOUT + 2) + PUSH_TIMEOUT + SLACK
    _assert_token_secret(lab, run)


def test_watcher_hanging_on_stop_is_killed_after_the_drain_timeout(lab: Lab) -> None:
    chain = nix_lab.write_chain(lab.tmp / "chain", 2, fail_at=2)
    run = lab.run("watcher-hang", chain, STANDIN_ATTIC_FAULT="ignore-stop-and-hang")
    _report("watcher hangs on stop", run)
    assert run.build.exit_code == lab.plain_build_exit_code(chain) == 1, run.log
    assert run.teardown.exit_code == 0
    assert re.search(r"attic watch-store did not stop within \d+ s: killed", run.teardown.output), run.teardown.output
    watcher = int((run.state / "watch-store.pid").read_text())
    assert not _pid_alive(watcher), "killed, not left behind"
    # the endpoint answers and the failed build left no result to push: the teardown is the watcher stop
    # (drain timeout, then the 2 s kill grace), nothing else
    assert DRAIN_TIMEOUT - 1 <= run.teardown.seconds < DRAIN_TIMEOUT + 2 + SLACK
    _assert_token_secret(lab, run)


# --- resumability -------------------------------------------------------------------------------------------


def test_a_failed_build_resumes_from_the_cache(lab: Lab) -> None:
    """Links 1-3 of 5 build, link 4 fails: 1-3 are cached; a fresh runner substitutes them, builds 4-5."""
    seed = secrets.token_hex(4)
    first = nix_lab.write_chain(lab.tmp / "chain", 5, seed=seed, fail_at=4, seconds=0.3)
    run1 = lab.run("resume-1", first)
    _report("resumability, failing run", run1)
    assert run1.build.exit_code == 1, run1.log
    done = nix_lab.chain_out_paths(first, lab.admin_env, upto=3)
    assert all(lab.in_cache(done)), (lab.in_cache(done), run1.log)
    assert _lines(run1.teardown.output, "no result out-link to push")

    nix_lab.delete_paths(done, lab.admin_env)  # the next job runs on a fresh runner
    fixed = nix_lab.write_chain(lab.tmp / "chain", 5, seed=seed, seconds=0.3)  # the fix touches link 4 only
    assert nix_lab.chain_out_paths(fixed, lab.admin_env, upto=3) == done
    run2 = lab.run("resume-2", fixed)
    _report("resumability, resumed run", run2)
    assert run2.build.exit_code == 0, run2.log
    for index in (1, 2, 3):
        assert not _lines(run2.build.output, f"-link{index}.drv'"), f"link{index} was rebuilt:\n{run2.build.output}"
        assert _lines(run2.build.output, f"copying path '{done[index - 1]}' from '{lab.attic.substituter(CACHE)}'")
    for index in (4, 5):
        assert _lines(run2.build.output, "building '/nix/store/"), run2.build.output
        assert _lines(run2.build.output, f"-link{index}.drv'")
    assert all(lab.in_cache(nix_lab.chain_out_paths(fixed, lab.admin_env)))


def test_bootstrap_without_attic_variables_skips_at_once(lab: Lab) -> None:
    chain = nix_lab.write_chain(lab.tmp / "chain", 1)
    env = lab.job_env("no-vars")
    for name in ("ATTIC_SERVER", "ATTIC_TOKEN"):
        env.pop(name)
    run = nix_lab.run_greedy_job(chain.installable, env, lab.tmp / "no-vars-state", lab.tmp / "no-vars-project")
    skipped = _lines(run.bootstrap.output, "cache publication skipped")
    assert len(skipped) == 1 and "ATTIC_SERVER ATTIC_TOKEN not set" in skipped[0]
    assert run.build.exit_code == 0 and run.overhead < 1 + SLACK
    assert not list(lab.attic.requests)
