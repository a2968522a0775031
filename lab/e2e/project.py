"""The flywheel project as a user runs it: a copy of the checkout, a local file backend, a passphrase secrets
provider, and the real `pulumi` CLI with the lab's plugins first on PATH.

The copy keeps the checkout clean (stack files, the policy pack's venv link, state); its `.venv` is a link to the
checkout's, the policy pack's `venv` a link to one made from `policies/requirements.txt` in the lab cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.build import CACHE

ROOT = Path(__file__).resolve().parents[2]
PROJECT_FILES = ("Pulumi.yaml", "__main__.py", "requirements.txt", "components", "policies", "tools")
PASSPHRASE = "flywheel-lab-passphrase"  # noqa: S105 - protects only this throwaway lab state


@dataclass
class CommandResult:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def check(self) -> CommandResult:
        if self.returncode != 0:
            raise AssertionError(
                f"`{' '.join(self.args)}` exited {self.returncode}\n--- stdout\n{self.stdout[-6000:]}\n"
                f"--- stderr\n{self.stderr[-4000:]}"
            )
        return self


def policy_venv() -> Path:
    """A virtualenv with the policy pack's pinned requirements, made once per requirements file."""
    requirements = ROOT / "policies" / "requirements.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]
    venv = CACHE / "venvs" / f"policy-{digest}"
    if not (venv / ".complete").exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "-r", str(requirements)], check=True)
        (venv / ".complete").touch()
    return venv


class Project:
    def __init__(self, workdir: Path, path_entries: list[Path], env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.dir = workdir / "project"
        self.state = workdir / "state"
        self.home = workdir / "pulumi-home"
        self.path_entries = path_entries
        self.extra_env = env or {}

    def create(self) -> None:
        self.dir.mkdir(parents=True)
        for name in PROJECT_FILES:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, self.dir / name, ignore=shutil.ignore_patterns("__pycache__", "venv", ".venv"))
            else:
                shutil.copy2(source, self.dir / name)
        (self.dir / ".venv").symlink_to(ROOT / ".venv")
        (self.dir / "policies" / "venv").symlink_to(policy_venv())
        self.state.mkdir()
        self.home.mkdir()
        self.pulumi("login", f"file://{self.state}").check()

    @property
    def env(self) -> dict[str, str]:
        path = os.pathsep.join([*(str(p) for p in self.path_entries), os.environ.get("PATH", "")])
        return {
            **os.environ,
            "PATH": path,
            "PULUMI_HOME": str(self.home),
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
            "PULUMI_BACKEND_URL": f"file://{self.state}",
            "NO_COLOR": "1",
            **self.extra_env,
        }

    def pulumi(self, *args: str, cwd: Path | None = None, timeout: float = 900) -> CommandResult:
        command = ["pulumi", *args]
        done = subprocess.run(
            command,
            cwd=cwd or self.dir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        result = CommandResult(command, done.returncode, done.stdout, done.stderr)
        self._log(result)
        return result

    def _log(self, result: CommandResult) -> None:
        """Every command's output under <workdir>/commands/, numbered, for reading a failed run afterwards."""
        logs = self.workdir / "commands"
        logs.mkdir(exist_ok=True)
        number = len(list(logs.iterdir())) + 1
        name = "-".join(a for a in result.args[1:3] if a.isidentifier())
        header = f"$ {' '.join(result.args)}\nexit {result.returncode}\n"
        body = f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        (logs / f"{number:02d}-{name}.txt").write_text(header + body)

    def write_stack(self, stack: str, values: dict[str, Any]) -> Path:
        """Write `Pulumi.<stack>.yaml` with `config:` values as the CLI stores them (objects for --path keys)."""
        import yaml

        path = self.dir / f"Pulumi.{stack}.yaml"
        existing = yaml.safe_load(path.read_text()) if path.exists() else {}
        existing = existing or {}
        existing["config"] = values
        path.write_text(yaml.safe_dump(existing, sort_keys=False))
        return path
