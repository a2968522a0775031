"""The README's "Running it for real" recipe, run as written against a copy of the repository.

The `pulumi` commands run the real Pulumi CLI (v3.274.1, built from the Go module proxy by `make lab`, which
`make e2e` runs first; `FLYWHEEL_PULUMI` overrides its path) with a local `file://` backend: `stack init`,
`config set [--secret] [--path]`, `config rm --path`. What the CLI stores is then handed to the program exactly
as the engine would (`pulumi config --json --show-secrets`: the values and which top-level keys are secret).
The same CLI checks tools/stack_yaml.py: a stack file must reach the offline render as it reaches the engine.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from components.config import check_platform_config, exact_secret_paths, namespace_values
from lab.build import by_name
from tests.conftest import ROOT, require_binary
from tools.mocks import FlywheelMocks, RecordingMonitor
from tools.render import RenderConfigError, StackConfig, read_stack_file, run_program, write_output

PULUMI = Path(os.environ.get("FLYWHEEL_PULUMI", str(by_name("pulumi").bin_dir / "pulumi")))
# The README's placeholder values and the canaries that replace them; none may reach any output.
CANARIES = {
    "glpat-xxxxxxxxxxxxxxxxxxxx": "glpat-readme-canary-token-5c1e",
    "AKIAXXXXXXXXXXXXXXXX": "AKIAREADMECANARY0001",
    "x" * 40: "readme-canary-secret-access-key-do-not-leak-9d",
    "attic:xxxxxxxx@": "attic:readme-canary-db-password-77@",
}
COPIED = ("__main__.py", "Pulumi.yaml", "Pulumi.dev.yaml", "requirements.txt", "components", "policies", "tools")


def _recipe() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Running it for real") :]
    block = section[section.index("```sh\n") + len("```sh\n") : section.index("```\n", section.index("```sh\n") + 6)]
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip() and not line.startswith("#")]


def _cli_env(home: Path) -> dict[str, str]:
    (home / "state").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "CI_"))}
    return env | {
        "PULUMI_HOME": str(home / "pulumi-home"),
        "PULUMI_BACKEND_URL": f"file://{home / 'state'}",
        "PULUMI_CONFIG_PASSPHRASE": "readme-recipe-test",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PATH": f"{PULUMI.parent}:{env.get('PATH', '')}",
    }


def _run(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = shlex.split(command)
    if argv[0] == "pulumi":
        argv = [str(PULUMI), *argv[1:], "--non-interactive"] if argv[1] == "stack" else [str(PULUMI), *argv[1:]]
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)


def _engine_config(cwd: Path, env: dict[str, str]) -> StackConfig:
    """The config as the engine hands it to the program: value strings, and the secret top-level keys."""
    shown = _run("pulumi config --json --show-secrets --stack prod", cwd, env)
    assert shown.returncode == 0, shown.stderr
    entries = json.loads(shown.stdout)
    values = {key: entry["value"] for key, entry in entries.items()}
    return StackConfig(values, sorted(key for key, entry in entries.items() if entry["secret"]))


def test_the_readme_recipe_runs_as_written(tmp_path: Path) -> None:
    require_binary(PULUMI)
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, repo / name)
    (repo / ".venv").symlink_to(ROOT / ".venv")
    env = _cli_env(tmp_path)
    recipe = _recipe()
    assert recipe[0].startswith("python3.11 -m venv .venv"), recipe[0]
    for placeholder in CANARIES:
        assert any(placeholder in line for line in recipe), f"the README no longer uses {placeholder!r}"
    ran = []
    for line in recipe[1:]:
        if line.startswith(("pulumi preview", "pulumi up")):
            continue  # need a cluster and GitLab: make e2e runs those
        if line.startswith("python3.11 -m venv"):
            continue  # installs: the copy uses this checkout's .venv
        for placeholder, canary in CANARIES.items():
            line = line.replace(placeholder, canary)
        done = _run(line, repo, env)
        assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
        ran.append(line)
        text = done.stdout + done.stderr
        assert not [c for c in CANARIES.values() if c in text], f"{line}: printed a secret"
    assert any(line.startswith(".venv/bin/python -m tools.render") for line in ran)
    stack_file = (repo / "Pulumi.prod.yaml").read_text()
    assert "encryptionsalt:" in stack_file and not [c for c in CANARIES.values() if c in stack_file]

    # what the engine would pass: the program accepts it, with no warning (every credential is secret)
    engine = _engine_config(repo, env)
    assert set(engine.secret_keys) == {"flywheel:database", "flywheel:storage", "gitlab:token"}
    # the program under `pulumi up` reads the exact secure paths from the stack file the real CLI wrote
    exact = exact_secret_paths(engine.values, engine.secret_keys, repo / "Pulumi.prod.yaml")
    assert exact == {
        "gitlab:token",
        ("flywheel:storage", "credentials", "accessKeyId"),
        ("flywheel:storage", "credentials", "secretAccessKey"),
        ("flywheel:database", "url"),
    }, exact
    checked = check_platform_config(*namespace_values(engine.values, sorted(exact, key=str)))
    assert checked.warnings == []
    assert checked.config.storage.backend == "s3" and checked.config.database.backend == "external"

    # and the program run with the real (decrypted) values leaks none of them
    monitor = RecordingMonitor(FlywheelMocks())
    result = run_program("prod", engine, monitor=monitor)
    out = tmp_path / "render"
    write_output(out, result, [])
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        leaked = [c for c in CANARIES.values() if c.strip("@") in path.read_text()]
        assert not leaked, f"{path.relative_to(out)}: {leaked}"


# --- the offline stack-file reader against the real CLI ----------------------------------------------------


YAML_CASES = {
    "yaml.v3 scalars": "flywheel:x: {a: 2024-01-01, b: yes, c: 1e3, d: 0o17, e: 017, f: '1:30', g: 1:30, "
    "h: !!binary aGVsbG8=, i: 2001-12-14t21:59:43.10-05:00, j: 1_000, k: on, 1: one, true: t, l: ~, m: [0x1f, -3]}",
    "top-level date": "flywheel:y: 2024-01-01",
    "top-level number and bool": "flywheel:n: 3\n  flywheel:b: true\n  flywheel:f: 1.5",
    "nested secure": "flywheel:s: {a: {secure: v1:AAAA}, b: plain}",
    "duplicate key": "flywheel:x: {a: 1, a: 2}",
    "duplicate top-level key": "flywheel:x: 1\n  flywheel:x: 2",
    "infinity": "flywheel:x: {a: .inf}",
    "not a number": "flywheel:x: [.nan]",
    "decimal beyond uint64": "flywheel:x: {a: 99999999999999999999}",
    "hex beyond uint64": "flywheel:x: {a: 0x7fffffffffffffffff}",
    "uint64 max": "flywheel:x: {a: 18446744073709551615}",
    "number spellings": "flywheel:x: {a: 0X10, b: 0B11, c: 0O17, d: 1_000.5, e: -0_8, f: 1_0e3, g: +1, h: 0o17, "
    "i: 0b101, j: 1_000, k: -0, l: 0x10, m: +0x10, n: -0b101, o: 08, p: 0_17}",
    "timestamp layouts": "flywheel:x: {a: 2024-1-2, b: 2024-01-02T10:2:3Z, c: 2001-12-14 21:59:43.10 -5, "
    "d: 2024-02-30}",
    "tags that fit": "flywheel:x: {a: !!omap [a: 1], b: !!float 1, c: !!str 12, d: !!set {a, b}, e: !!int '12'}",
    "float tag on text": "flywheel:x: {a: !!float x}",
    "timestamp tag on text": "flywheel:x: {a: !!timestamp foo}",
    "int tag on text": "flywheel:x: {a: !!int foo}",
    "int tag on 0x": "flywheel:x: {a: !!int 0x}",
    "int tag on a float": "flywheel:x: {a: !!int 1.5}",
    "bool tag on yes": "flywheel:x: {a: !!bool yes}",
    "binary tag on not base64": 'flywheel:x: {a: !!binary "@@"}',
}
# what the CLI says when it refuses a file, and the part of it the render's line must hold (a value as `…`)
CLI_REFUSALS = re.compile(
    r"mapping key .* already defined(?= at line \d+)|unsupported value|cannot decode !!\w+ `.*` as a !!\w+"
    r"|!!binary value contains invalid base64 data"
)


def _offline(path: Path) -> StackConfig | list[str]:
    try:
        return read_stack_file(path)
    except RenderConfigError as err:
        return err.problems


@pytest.mark.parametrize("case", sorted(YAML_CASES))
def test_the_stack_file_reaches_the_render_as_it_reaches_the_engine(case: str, tmp_path: Path) -> None:
    require_binary(PULUMI)
    env = _cli_env(tmp_path)
    (tmp_path / "Pulumi.yaml").write_text("name: flywheel\nruntime: python\n")
    (tmp_path / "Pulumi.prod.yaml").write_text("config: {}\n")
    created = _run("pulumi stack init prod", tmp_path, env)
    assert created.returncode == 0, created.stderr
    salt = next(line for line in (tmp_path / "Pulumi.prod.yaml").read_text().splitlines() if "encryptionsalt" in line)
    stack_file = tmp_path / "Pulumi.prod.yaml"
    stack_file.write_text(f"config:\n  {YAML_CASES[case]}\n{salt}\n")
    shown = _run("pulumi config --json --stack prod", tmp_path, env)
    offline = _offline(stack_file)
    if shown.returncode != 0:  # the CLI refuses the file: so must the render, with a line that says why
        assert isinstance(offline, list), f"the CLI refused it ({shown.stderr.strip()}); the render accepted it"
        cli_reason = CLI_REFUSALS.search(shown.stderr)
        assert cli_reason is not None, shown.stderr
        expected = re.sub(r"`.*`", "`…`", cli_reason.group(0))
        assert any(expected in problem for problem in offline), (offline, shown.stderr)
        return
    assert isinstance(offline, StackConfig), offline
    entries = json.loads(shown.stdout)
    for key, entry in entries.items():
        if entry["secret"]:
            assert key in offline.secret_keys
            continue
        engine_value, render_value = entry["value"], offline.values[key]
        if entry.get("objectValue") is not None:
            assert json.loads(render_value) == json.loads(engine_value), key
            assert render_value.replace(" ", "") != "" and _types(json.loads(render_value)) == _types(
                json.loads(engine_value)
            ), key
        else:
            assert render_value == engine_value, key
    assert sorted(entries) == sorted(offline.values)


def _types(value: object) -> object:
    """The JSON types of a value, so 1000 and 1000.0 (equal in Python) differ."""
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_types(v) for v in value]
    return type(value).__name__
