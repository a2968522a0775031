"""The machine the figures came from: CPUs, CPU model, memory, OS and tool versions."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
GITLAB_CI_LOCAL = ROOT / ".tools" / "node_modules" / ".bin" / "gitlab-ci-local"


def describe() -> dict[str, Any]:
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "memory_gib": _memory_gib(),
        "os": _os_name(),
        "python": platform.python_version(),
        "tools": _tool_versions(),
    }


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else platform.processor() or "unknown CPU"


def _memory_gib() -> float:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return 0.0
    match = re.search(r"^MemTotal:\s*(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) / (1024 * 1024) if match else 0.0


def _os_name() -> str:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return f"{platform.system()} {platform.release()}"
    match = re.search(r'^PRETTY_NAME="?([^"\n]+)"?$', text, re.MULTILINE)
    name = match.group(1) if match else platform.system()
    return f"{name}, kernel {platform.release()}"


def _tool_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    candidates = {"nix": ["nix", "--version"], "gitlab-ci-local": [str(GITLAB_CI_LOCAL), "--version"]}
    for name, command in candidates.items():
        if shutil.which(command[0]) is None:
            continue
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        found = re.search(r"\d+\.\d+(\.\d+)?", done.stdout)
        if done.returncode == 0 and found:
            versions[name] = found.group(0)
    return versions
