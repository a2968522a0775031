"""The shared set-up of parts 1–3: real Nix, the loopback Attic stand-in and the template's own shell.

Everything here reuses ``tools/nix_lab.py`` (loopback binary cache, STAND-IN attic client, derivation
chains) and the component that ``components/ci_template.py`` renders: job variables come from the
rendered ``.greedy-attic`` job, and the bootstrap/teardown are the real ``components/templates/*.sh``.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components.ci_template import BOOTSTRAP, TEARDOWN, render_component
from components.config import CiTemplateConfig
from tools import nix_lab

CACHE = "main"
UPSTREAM = "upstream"  # plays cache.nixos.org for the first client ref
CLIENT_ATTRIBUTE = "attic-client"


def template_jobs(config: CiTemplateConfig | None = None) -> dict[str, Any]:
    """The jobs document of the rendered component (the second YAML document)."""
    documents = list(yaml.safe_load_all(render_component(config or CiTemplateConfig())))
    jobs: dict[str, Any] = documents[1]
    return jobs


def template_variables(inputs: Mapping[str, str], state_dir: Path) -> dict[str, str]:
    """``.greedy-attic`` variables as a job would see them: inputs interpolated, the state dir resolved."""
    variables: dict[str, str] = dict(template_jobs()[".greedy-attic"]["variables"])

    def interpolate(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in inputs:
            raise KeyError(f"the template needs input {name!r}; the benchmark gives none")
        return inputs[name]

    resolved = {k: re.sub(r"\$\[\[\s*inputs\.([\w-]+)\s*\]\]", interpolate, str(v)) for k, v in variables.items()}
    resolved["GREEDY_ATTIC_STATE_DIR"] = str(state_dir)
    return resolved


@dataclass
class AtticLab:
    """A token-protected loopback cache with the stand-in client pushed to it (and to an 'upstream' cache)."""

    work: Path
    cache: nix_lab.LoopbackCache
    key: nix_lab.SigningKey
    token: str
    client_path: str
    client_flake: Path
    env: dict[str, str]

    @property
    def client_ref(self) -> str:
        return f"path:{self.client_flake}#{CLIENT_ATTRIBUTE}"

    def job_env(self, home: Path, **extra: str) -> dict[str, str]:
        """A job's environment: private Nix caches under ``home``, the group's ATTIC_* variables."""
        env = nix_lab.nix_env(home)
        env.update(
            ATTIC_SERVER=self.cache.url,
            ATTIC_CACHE=CACHE,
            ATTIC_PUBLIC_KEY=self.key.public,
            ATTIC_TOKEN=self.token,
        )
        env.update(extra)
        return env

    def with_upstream(self, env: dict[str, str]) -> dict[str, str]:
        """The loopback 'upstream' cache as the job's default substituter (cache.nixos.org's role)."""
        upstream = (
            f"{nix_lab.EXPERIMENTAL}\nsubstituters = {self.cache.substituter(UPSTREAM)}\n"
            f"trusted-public-keys = {self.key.public}\nnetrc-file = {self.work / 'upstream.netrc'}"
        )
        return {**env, "NIX_CONFIG": upstream}

    def forget_client(self) -> None:
        """Remove the client from the local store (a fresh runner does not have it)."""
        nix_lab.delete_paths([self.client_path], self.env)

    def restore_client(self) -> None:
        """Put the client back into the local store (a runner whose store persists between jobs)."""
        substituter = ["--option", "substituters", self.cache.substituter(UPSTREAM)]
        trust = ["--option", "trusted-public-keys", self.key.public]
        netrc = ["--option", "netrc-file", str(self.work / "upstream.netrc")]
        nix_lab.run_nix(
            ["build", "--no-link", "--max-jobs", "0", self.client_path, *substituter, *trust, *netrc], self.env
        )


@contextmanager
def attic_lab(work: Path) -> Iterator[AtticLab]:
    work.mkdir(parents=True, exist_ok=True)
    env = nix_lab.nix_env(work / "home")
    key = nix_lab.make_signing_key(work / "keys")
    token = secrets.token_urlsafe(24)
    (work / "upstream.netrc").write_text(f"machine 127.0.0.1 password {token}\n")
    with nix_lab.loopback_cache(work / "cache", token=token) as cache:
        client_flake = work / "client"
        client = nix_lab.build_standin_attic_client(client_flake, env, signing_key=key)
        for name in (CACHE, UPSTREAM):
            nix_lab.copy_to_cache([client], cache.cache_dir(name), key, env)
        yield AtticLab(work, cache, key, token, client, client_flake, env)


@dataclass(frozen=True)
class Phase:
    seconds: float
    returncode: int
    output: str


def run_phase(script: str, env: Mapping[str, str], cwd: Path, timeout: float = 600) -> Phase:
    """Run a job phase (shell text) in its own bash, as the runner does; wall time and output."""
    started = time.monotonic()
    done = subprocess.run(
        ["bash", "-c", script],
        env=dict(env),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Phase(time.monotonic() - started, done.returncode, done.stdout)


def bootstrap(env: Mapping[str, str], cwd: Path) -> Phase:
    return run_phase(BOOTSTRAP.read_text(), env, cwd)


def teardown(env: Mapping[str, str], cwd: Path) -> Phase:
    return run_phase(TEARDOWN.read_text(), env, cwd)


def status_of(state_dir: Path) -> str:
    try:
        return (state_dir / "status").read_text().strip()
    except OSError:
        return "no status"


BUILDING = re.compile(r"building '/nix/store/[^']*-lab-(?P<seed>[0-9a-f]+)-link(?P<index>\d+)\.drv'")


def built_links(output: str, seed: str) -> list[int]:
    """Chain links a ``nix build`` log says it built (substituted ones are not 'building')."""
    return sorted({int(m.group("index")) for m in BUILDING.finditer(output) if m.group("seed") == seed})
