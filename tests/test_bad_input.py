"""What a newcomer hits first (issue 16): the render's output folder, YAML the model does not take, limits of the
consumers, secrets in errors and outputs, and YAML-level fuzzing with a fixed budget.

Every error is one line that names the key; no error, warning, output file or printed line ever carries a secret
canary, whether the canary was given as a secure value or (wrongly) as plain text.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from components.config import ConfigError, load_platform_config, namespace_problems
from tests.conftest import IN_CI, ROOT, dev_value, stack_with
from tests.test_config import dev_raw, problems_for, with_change
from tools import render as render_tool
from tools.mocks import FlywheelMocks, RecordingMonitor
from tools.preview_markdown import render_note
from tools.render import (
    RENDER_MARKER,
    RenderConfigError,
    StackConfig,
    read_stack_file,
    run_program,
    validate_config,
    write_output,
)
from tools.render_diff import Render, load_render, report_from_renders
from tools.render_diff import main as render_diff_main

CANARY_TOKEN = "ghp_canaryGithubToken0000000000000000ab"
CANARY_KEY_ID = "AKIACANARYKEYID00001"
CANARY_SECRET_KEY = "canary-secret-access-key-do-not-print-3b"
CANARY_PASSWORD = "canary-db-password-4e"
CANARY_VARIABLE = "canary-extra-variable-value-8f"
CANARIES = (CANARY_TOKEN, CANARY_KEY_ID, CANARY_SECRET_KEY, CANARY_PASSWORD, CANARY_VARIABLE)
# Hypothesis budget: fixed, and derandomized under CI so a pipeline run is reproducible.
FUZZ_EXAMPLES = int(os.environ.get("FLYWHEEL_FUZZ_EXAMPLES", "150"))


def _stack_document(stack: StackConfig) -> dict[str, Any]:
    config = {k: json.loads(v) if v[:1] in "[{" else v for k, v in stack.values.items()}
    return {"config": config}


def _write_stack(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _no_canary(*texts: str) -> None:
    for text in texts:
        leaked = [c for c in CANARIES if c in text]
        assert not leaked, f"{leaked} in: {text[:400]}"


# --- --out: only ever a render's own files --------------------------------------------------------------------


def test_out_refuses_a_folder_that_is_not_a_render(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "main.py").write_text("precious\n")
    assert render_tool.render("dev", checkout) == render_tool.EXIT_CONFIG
    err = capsys.readouterr().err
    assert "not a render" in err and "refusing to replace it" in err and "Traceback" not in err
    assert (checkout / "main.py").read_text() == "precious\n" and sorted(checkout.iterdir()) == [checkout / "main.py"]
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert render_tool.render("dev", a_file) == render_tool.EXIT_CONFIG
    assert a_file.read_text() == "x"


def test_a_render_replaces_only_what_a_render_wrote_and_a_failure_leaves_nothing_stale(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert render_tool.render("dev", out) == render_tool.EXIT_OK
    assert (out / RENDER_MARKER).is_file() and (out / "resources.json").is_file()
    (out / "my-notes.txt").write_text("mine\n")
    (out / "manifests" / "stale.yaml").write_text("kind: Stale\n")
    assert render_tool.render("dev", out) == render_tool.EXIT_OK
    assert (out / "my-notes.txt").read_text() == "mine\n"  # not the render's: kept
    assert not (out / "manifests" / "stale.yaml").exists()  # inside the render's own folder: replaced

    broken = _stack_document(stack_with({"attic": {"replicas": 0}}))
    stack_file = _write_stack(tmp_path / "Pulumi.broken.yaml", broken)
    assert render_tool.render("broken", out, stack_file) == render_tool.EXIT_CONFIG
    # no earlier render to be mistaken for this one; still a render folder (the marker), the user's file kept
    assert sorted(p.name for p in out.iterdir()) == [RENDER_MARKER, "my-notes.txt"]
    with pytest.raises(Exception, match="not a render output"):
        load_render(out)


# --- exit codes: 2 for bad input, 3 for a bug, never a traceback -------------------------------------------------


@pytest.mark.parametrize(
    ("content", "where"),
    [
        (b'config:\n  flywheel:namespace: "caf\xe9"\n', "not UTF-8 text at byte 34 (line 2: invalid continuation byte"),
        (b"\xffconfig: {}\n", "not UTF-8 text at byte 0 (line 1: invalid start byte, byte 0xff"),
        (b'config:\n  flywheel:namespace: "a\x00b"\n', "unacceptable character #x0000"),
    ],
    ids=["latin-1", "0xff", "nul"],
)
def test_a_stack_file_that_is_not_utf8_text_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, where: str
) -> None:
    stack_file = tmp_path / "Pulumi.bytes.yaml"
    stack_file.write_bytes(content)
    assert render_tool.main(["--stack", "bytes", "--stack-file", str(stack_file), "--out", str(tmp_path / "o")]) == 2
    (problem,) = capsys.readouterr().err.splitlines()[1:]
    assert problem.startswith(f"  {stack_file}: ") and where in problem, problem


def test_a_bom_is_read_as_the_cli_reads_it(tmp_path: Path) -> None:
    text = _dev_text()
    for name, data in (("utf8", b"\xef\xbb\xbf" + text.encode()), ("utf16", text.encode("utf-16"))):
        stack_file = tmp_path / f"Pulumi.{name}.yaml"
        stack_file.write_bytes(data)
        assert read_stack_file(stack_file).values == read_stack_file(ROOT / "Pulumi.dev.yaml").values


@pytest.mark.parametrize("under", ["a-file/sub", "/proc/flywheel-out"])
def test_an_out_that_cannot_be_created_fails_before_rendering(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, under: str
) -> None:
    (tmp_path / "a-file").write_text("x")
    monkeypatch.setattr(render_tool, "run_program", lambda *_: pytest.fail("rendered before checking --out"))
    before = sorted(tmp_path.rglob("*"))
    assert render_tool.main(["--out", str(tmp_path / under)]) == render_tool.EXIT_CONFIG
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"flywheel render: --out {tmp_path / under}: "), line
    assert sorted(tmp_path.rglob("*")) == before and (tmp_path / "a-file").read_text() == "x"


@pytest.mark.parametrize("failure", ["no space", "a folder became a file"])
def test_an_out_that_fails_while_writing_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    import errno

    out = tmp_path / "parent" / "out"
    if failure == "no space":

        def full(*_: Any) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(out / CANARY_TOKEN))

        monkeypatch.setattr(render_tool, "_write_json", full)
    else:
        clear = render_tool.clear_output

        def parent_becomes_a_file(folder: Path, keep_marker: bool = False) -> None:  # once write_output checked it
            clear(folder, keep_marker)
            if not keep_marker and not (tmp_path / "parent").is_file():
                (tmp_path / "parent").write_text("x")

        monkeypatch.setattr(render_tool, "clear_output", parent_becomes_a_file)
    assert render_tool.main(["--out", str(out)]) == render_tool.EXIT_CONFIG
    lines = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("flywheel: warning:")]
    (line,) = lines
    assert line.startswith(f"flywheel render: --out {out}: cannot write the render ("), line
    assert ("No space left on device" if failure == "no space" else "Not a directory") in line, line
    _no_canary(line)
    assert not out.exists() or not any(out.iterdir())


def test_a_bug_has_its_own_exit_code_and_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def bug(*_: Any) -> None:
        raise KeyError(CANARY_TOKEN)  # an exception's text may quote a value: it is not printed

    monkeypatch.setattr(render_tool, "run_program", bug)
    with pytest.raises(SystemExit) as exited:
        render_tool.main(["--out", str(tmp_path / "out")])
    assert exited.value.code == render_tool.EXIT_INTERNAL == 3
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("flywheel render: internal error, a bug in flywheel and not your configuration: KeyError")
    _no_canary(line)


def test_make_render_names_an_internal_error() -> None:
    done = subprocess.run(  # -o: use the venv as it is (no pip); the stand-in python exits as a bug does
        ["make", "-s", "-o", ".venv/.runtime", "render", "PY=sh -c 'exit 3' --"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "make render: tools.render exited 3 (an internal error, a bug to report)" in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        ('{"a": 1}', "got a JSON dict"),
        ('[{"urn": 5}]', "item [0] lacks a string 'urn', a string 'type', a string 'name'"),
        ('[{"urn": "u", "type": "t", "name": "n", "inputs": [1]}]', "item [0] lacks an object 'inputs'"),
    ],
)
def test_render_diff_on_a_malformed_render_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], resources: str, expected: str
) -> None:
    (tmp_path / "resources.json").write_text(resources)
    assert render_diff_main(["--head", str(tmp_path)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"render_diff: {tmp_path / 'resources.json'}: not a render output ({expected}"), line
    assert "expected a list of resources" in line


# --- YAML the model does not take ------------------------------------------------------------------------------


def _render_problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "Pulumi.fuzz.yaml"
    path.write_text(text)
    try:
        validate_config(read_stack_file(path))
    except RenderConfigError as err:
        return err.problems
    return []


def _dev_text() -> str:
    return (ROOT / "Pulumi.dev.yaml").read_text()


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "retention: 30 days",
            "retention: 2024-01-01",
            "flywheel:attic.gc.retention: an unquoted YAML date (the Pulumi CLI passes it on as "
            "'2024-01-01 00:00:00 +0000 UTC') (got '2024-01-01 00:00:00 +0000 UTC'; expected the value in quotes",
        ),
        ("templateRef: main", "templateRef: 2024-01-01", "flywheel:gitlab.templateRef: an unquoted YAML date"),
        (
            'NIX_CONFIG: "experimental-features = nix-command flakes"',
            "NIX_CONFIG: 2024-06-01T10:00:00Z",
            "flywheel:runners[0].environment.NIX_CONFIG: an unquoted YAML date (the Pulumi CLI passes it on as "
            "'2024-06-01 10:00:00 +0000 UTC') (got '[secret]'",  # a free-form map's values are never echoed
        ),
        ("retention: 30 days", "retention: [1, 2024-01-01]", "flywheel:attic.gc.retention[1]: an unquoted YAML date"),
        ("replicas: 2\n", "replicas: true\n", "flywheel:attic.replicas: a boolean where a number belongs"),
        ("s3Tier: true", "s3Tier: 1", "flywheel:bazelCache.s3Tier: a number where true/false belongs"),
        ("maxSizeGiB: 50", "maxSizeGiB: .inf", "config.flywheel:bazelCache.maxSizeGiB: inf cannot be stored as config"),
    ],
)
def test_yaml_types_the_model_does_not_take_get_one_line(tmp_path: Path, old: str, new: str, expected: str) -> None:
    text = _dev_text()
    assert old in text
    problems = _render_problems(tmp_path, text.replace(old, new, 1))
    assert len(problems) == 1 and problems[0].startswith(str(tmp_path)) is expected.startswith("config."), problems
    assert expected in problems[0], problems


def test_duplicate_keys_are_an_error_as_in_the_pulumi_cli(tmp_path: Path) -> None:
    text = _dev_text().replace("    cacheName: main\n", "    cacheName: main\n    cacheName: other\n")
    text = text.replace("  flywheel:ciTemplate:", "  flywheel:namespace: again\n  flywheel:ciTemplate:")
    lines = text.splitlines()
    first_cache, again = lines.index("    cacheName: main") + 1, lines.index("  flywheel:namespace: again") + 1
    problems = _render_problems(tmp_path, text)
    assert [p.split(": ", 1)[1] for p in problems] == [
        f'line {first_cache + 1}: mapping key "cacheName" already defined at line {first_cache}',
        f'line {again}: mapping key "flywheel:namespace" already defined at line 3',
    ]


def test_yes_and_on_stay_strings_as_in_the_pulumi_cli(tmp_path: Path) -> None:
    text = _dev_text().replace('NIX_CONFIG: "experimental-features = nix-command flakes"', "FEATURE: on")
    path = tmp_path / "Pulumi.on.yaml"
    path.write_text(text)
    runners = json.loads(read_stack_file(path).values["flywheel:runners"])
    assert runners[0]["environment"] == {"FEATURE": "on"}


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        # what the real CLI 3.274.1 (`pulumi config --json`) gave for each (tests/e2e/test_readme_recipe.py)
        ("99999999999999999999", 100000000000000000000),  # beyond uint64: a float64
        ("18446744073709551615", 18446744073709552000),  # a uint64, re-read by the CLI as a float64
        ("0x7fffffffffffffffff", "0x7fffffffffffffffff"),  # not decimal, beyond uint64: the text
        ("9223372036854775807", 9223372036854775807),  # int64 max: exact
        ("-9223372036854775809", -9223372036854776000),  # below int64: a float64, as Go writes it
        ("0xffffffffffffffff", 18446744073709552000),  # a uint64 in hex: a float64 as well
        ("-0x8000000000000001", "-0x8000000000000001"),  # below int64, signed: no uint64, not decimal
        ("0o7777777777777777777777", "0o7777777777777777777777"),
        ("07777777777777777777777", 7.777777777777777e21),  # a leading-0 octal beyond: read as a decimal float
    ],
)
def test_integers_beyond_int64_reach_the_render_as_they_reach_the_engine(
    tmp_path: Path, literal: str, expected: int | float | str
) -> None:
    value = _nested_scalar(tmp_path, literal)
    assert (value, type(value)) == (expected, type(expected))


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        # what the real CLI 3.274.1 (`pulumi config --json`) gave for each (tests/e2e/test_readme_recipe.py)
        ("0X10", 16),  # Go's ParseInt(s, 0, 64) takes its prefixes in either case
        ("0B11", 3),
        ("0O17", 15),
        ("1_000.5", 1000.5),  # '_' is dropped before ParseFloat as well
        ("-0_8", -8),  # "-08": not octal, but a decimal float
        ("1_0e3", 10000),
        ("+1", 1),
        ("0o17", 15),
        ("0b101", 5),
        ("1_000", 1000),
        ("-0", 0),
        ("0x10", 16),
        ("+0x10", 16),
        ("-0b101", -5),
        ("08", 8),
        ("0_17", 15),
        ("!!float 1", 1),  # a !!float takes an int
        ("!!omap [a: 1]", [{"a": 1}]),  # a tag on a sequence changes nothing
        ("!!set {a, b}", {"a": None, "b": None}),
        ("!!binary aGVsbG8=", "hello"),
        ("!!str 12", "12"),
        ("2024-1-2", "2024-01-02 00:00:00 +0000 UTC"),  # yaml.v3's layouts have one-digit fields
        ("2024-01-02T10:2:3Z", "2024-01-02 10:02:03 +0000 UTC"),
        ("2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.1 -0500 -0500"),
        ("2001-12-14 21:59:43.10 -5", "2001-12-14 21:59:43.10 -5"),  # in no layout: text (resolve.go:299)
        ("2024-02-30", "2024-02-30"),  # no such day: text
    ],
)
def test_scalars_reach_the_render_as_they_reach_the_engine(tmp_path: Path, literal: str, expected: Any) -> None:
    value = _nested_scalar(tmp_path, literal)
    assert (value, type(value)) == (expected, type(expected))


def _nested_scalar(tmp_path: Path, literal: str) -> Any:
    """``literal`` as the value of ``a`` in an object-valued key, read from a stack file as the render reads it."""
    path = tmp_path / "Pulumi.scalar.yaml"
    path.write_text(f"config:\n  flywheel:x: {{a: {literal}}}\n")
    return json.loads(read_stack_file(path).values["flywheel:x"])["a"]


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        # the real CLI 3.274.1 refuses each: yaml: cannot decode !!str `x` as a !!float, ...
        ("!!float x", "cannot decode !!str `…` as a !!float"),
        ("!!timestamp foo", "cannot decode !!str `…` as a !!timestamp"),
        ("!!int foo", "cannot decode !!str `…` as a !!int"),
        ("!!int 0x", "cannot decode !!str `…` as a !!int"),
        ("!!int 1.5", "cannot decode !!float `…` as a !!int"),
        ("!!bool yes", "cannot decode !!str `…` as a !!bool"),
        ('!!binary "@@"', "!!binary value contains invalid base64 data"),
    ],
)
def test_an_explicit_tag_the_value_does_not_fit_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], literal: str, expected: str
) -> None:
    stack_file = tmp_path / "Pulumi.tag.yaml"
    stack_file.write_text(f"config:\n  flywheel:namespace: ci\n  flywheel:x: {{a: {literal}}}\n")
    assert render_tool.main(["--stack", "tag", "--stack-file", str(stack_file), "--out", str(tmp_path / "o")]) == 2
    (problem,) = capsys.readouterr().err.splitlines()[1:]
    assert problem.startswith(f"  {stack_file}: line 3: {expected} (the Pulumi CLI refuses it too"), problem


def test_a_value_error_while_parsing_is_the_files_problem_not_a_bug(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tools import stack_yaml

    def unforeseen(*_: Any) -> None:
        raise ValueError(CANARY_TOKEN)  # its text may quote the value: it is not printed

    monkeypatch.setattr(stack_yaml, "_go_resolve", unforeseen)
    stack_file = tmp_path / "Pulumi.odd.yaml"
    stack_file.write_text("config:\n  flywheel:x: 1\n")
    assert render_tool.main(["--stack", "odd", "--stack-file", str(stack_file), "--out", str(tmp_path / "o")]) == 2
    (problem,) = capsys.readouterr().err.splitlines()[1:]
    assert problem.startswith(f"  {stack_file}: a value this reader cannot parse (ValueError;"), problem
    _no_canary(problem)


# --- limits of the consumers ----------------------------------------------------------------------------------

LIMITS = [
    ("namespace", "a" * 60, "flywheel:namespace: too long for the derived jobs namespace"),
    ("namespace", "kube-system", "flywheel:namespace: is a namespace Kubernetes owns"),
    ("namespace", "default", "flywheel:namespace: is a namespace Kubernetes owns"),
    ("runnerFleet.jobsNamespace", "kube-ci", "flywheel:runnerFleet.jobsNamespace: is a namespace Kubernetes owns"),
    ("runners[0].nodeSelector", {"bad key!": "x"}, 'flywheel:runners[0].nodeSelector["bad key!"]: not a Kubernetes'),
    ("runners[0].nodeSelector", {"pool": "not a value"}, "flywheel:runners[0].nodeSelector.pool: not a Kubernetes"),
    ("attic.ingress.annotations", {"-bad/": "x"}, "not a Kubernetes label key"),
    ("attic.chunking.maxSize", 2**63, "flywheel:attic.chunking.maxSize: out of range"),
    ("gitlab.groupId", 2**63, "flywheel:gitlab.groupId: out of range"),
    ("runnerFleet.checkInterval", 10**12, "flywheel:runnerFleet.checkInterval: out of range"),
    ("attic.replicas", True, "flywheel:attic.replicas: a boolean where a number belongs"),
    ("attic.public", 1, "flywheel:attic.public: a number where true/false belongs"),
    ("runners", [], "flywheel:runners: too short (got a list of 0 item(s); expected at least 1 item(s))"),
    ("bazelCache.enabled", False, "flywheel:runners[0].cacheInjection: bazelCache.enabled is false"),
]


@pytest.mark.parametrize(("path", "value", "expected"), LIMITS, ids=[f"{p}={v!r}"[:60] for p, v, _ in LIMITS])
def test_what_the_consumers_refuse_is_refused_at_config_time(path: str, value: Any, expected: str) -> None:
    problems = problems_for(with_change(path, value))
    assert any(expected in problem for problem in problems), problems
    assert all("\n" not in problem for problem in problems)


def test_bazel_cache_off_with_pools_opted_out_is_accepted() -> None:
    raw = with_change("bazelCache.enabled", False)
    raw["runners"] = [{**pool, "cacheInjection": False} for pool in raw["runners"]]
    assert load_platform_config(raw).bazel_cache.enabled is False


def test_a_gitlab_url_with_the_api_path_is_not_doubled() -> None:
    config = load_platform_config(with_change("gitlab.url", "https://gitlab.example.com/api/v4/"))
    assert config.gitlab.url == "https://gitlab.example.com"
    assert config.gitlab.api_url == "https://gitlab.example.com/api/v4/"


def test_a_misspelt_config_namespace_is_named() -> None:
    assert namespace_problems(["flywheeel:attic", "flywheel:attic", "gitlab:token", "aws:region"]) == [
        "flywheeel:attic: unknown config namespace 'flywheeel', never read (expected flywheel:attic)"
    ]


def test_backend_only_keys_of_the_other_backend_are_refused_not_ignored() -> None:
    database = {"backend": "external", "url": "postgres://attic@db/attic", "instances": 3}
    assert problems_for(with_change("database", database)) == [
        "flywheel:database.instances: 'instances' belongs to backend 'cnpg' and would be ignored (got 3; expected "
        "with backend 'external' only 'url' (remove the CloudNativePG keys))"
    ]


# --- secrets: errors, outputs, secrecy end to end -------------------------------------------------------------


def _s3_storage(**extra: Any) -> dict[str, Any]:
    return {
        "backend": "s3",
        "region": "eu-west-1",
        "endpoint": "https://s3.example.com",
        "credentials": {"accessKeyId": CANARY_KEY_ID, "secretAccessKey": CANARY_SECRET_KEY},
        **extra,
    }


def test_an_error_about_one_key_of_a_map_never_prints_its_values() -> None:
    environment = {"GITHUB_TOKEN": CANARY_TOKEN, "BAZEL_REMOTE_CACHE": "grpc://elsewhere:9092"}
    problems = problems_for(with_change("runners[0].environment", environment))
    assert problems == [
        "flywheel:runners[0].environment: BAZEL_REMOTE_CACHE is injected from the cache contract (got an object "
        "with keys BAZEL_REMOTE_CACHE, GITHUB_TOKEN; expected keys other than ATTIC_CACHE, ATTIC_PUBLIC_KEY, "
        "ATTIC_SERVER, BAZEL_REMOTE_CACHE, GF_BAZEL_SUBSTRATE_MODE)"
    ]
    typo = problems_for(with_change("storage", _s3_storage(credential={"secretAccessKey": CANARY_SECRET_KEY})))
    assert typo and all(CANARY_SECRET_KEY not in p and CANARY_KEY_ID not in p for p in typo), typo
    assert any("got an object with keys secretAccessKey" in p for p in typo), typo


def test_exact_secret_paths_hide_the_secret_and_show_its_siblings() -> None:
    raw = with_change("storage", _s3_storage(region=""))
    secure = [("storage", "credentials", "accessKeyId"), ("storage", "credentials", "secretAccessKey")]
    with pytest.raises(ConfigError) as caught:
        load_platform_config(raw, secure)
    assert caught.value.problems == ["flywheel:storage.region: too short (got ''; expected at least 1 character(s))"]
    raw = with_change("storage", _s3_storage(credentials={"accessKeyId": CANARY_KEY_ID}))
    with pytest.raises(ConfigError) as caught:
        load_platform_config(raw, secure)
    _no_canary(*caught.value.problems)


@pytest.mark.parametrize(
    "secure",
    [("runners",), ("runners", "0", "environment", "GITHUB_TOKEN"), ("attic", "host"), ("gitlab", "url")],
)
def test_a_secure_value_where_it_would_leak_is_refused(secure: tuple[str, ...]) -> None:
    raw = with_change("runners[0].environment", {"GITHUB_TOKEN": CANARY_TOKEN})
    with pytest.raises(ConfigError) as caught:
        load_platform_config(raw, [secure] if len(secure) > 1 else [secure[0]])
    (problem,) = caught.value.problems
    where = re.escape(".".join(secure).replace(".0.", "[0]."))
    assert re.match(rf"flywheel:{where}: holds a secure value where the program cannot keep it secret", problem)
    assert "gitlab.extraVariables" in problem
    _no_canary(problem)


def _unmasked_secret_variable_stack() -> StackConfig:
    gitlab = dev_value("gitlab")
    gitlab["extraVariables"]["DEPLOY_HOOK"] = CANARY_VARIABLE  # secure in the stack file, not masked
    stack = stack_with({"gitlab": gitlab})
    stack.secret_keys = ["flywheel:gitlab"]
    return stack


def test_a_secure_extra_variable_stays_a_secret_output_end_to_end(tmp_path: Path) -> None:
    from pulumi.runtime import rpc

    monitor = RecordingMonitor(FlywheelMocks())
    result = run_program("dev", _unmasked_secret_variable_stack(), monitor=monitor)
    (variable,) = [r for r in monitor.registrations if r.name == "group-variables-DEPLOY_HOOK"]
    assert rpc.is_rpc_secret(variable.inputs["value"]) and variable.inputs["masked"] is False
    plain = [r for r in monitor.registrations if r.name == "group-variables-NIX_CONFIG_EXTRA"]
    assert rpc.is_rpc_secret(plain[0].inputs["value"])  # the engine only says "gitlab holds a secret": all are
    write_output(tmp_path, result, [])
    _no_canary(*(p.read_text() for p in tmp_path.rglob("*") if p.is_file()))


def test_plain_text_credentials_warn_without_printing_them() -> None:
    stack = stack_with({"storage": _s3_storage(), "database": {"backend": "external", "url": _dsn()}})
    warnings = validate_config(stack)
    assert [w.split(" is plain text")[0] for w in warnings] == [
        "flywheel:storage.credentials.accessKeyId",
        "flywheel:storage.credentials.secretAccessKey",
        "flywheel:database.url",
    ]
    _no_canary(*warnings)
    stack.secret_keys = ["flywheel:database", "flywheel:storage"]
    assert validate_config(stack) == []


def _dsn() -> str:
    return f"postgres://attic:{CANARY_PASSWORD}@db.example.com:5432/attic"


def test_the_cli_render_with_plain_credentials_prints_and_writes_no_canary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gitlab = dev_value("gitlab")
    gitlab["extraVariables"]["DEPLOY_HOOK"] = {"value": CANARY_VARIABLE, "masked": True}
    stack = stack_with({"storage": _s3_storage(), "database": {"backend": "external", "url": _dsn()}, "gitlab": gitlab})
    stack_file = _write_stack(tmp_path / "Pulumi.plain.yaml", _stack_document(stack))
    assert render_tool.render("plain", tmp_path / "out", stack_file) == render_tool.EXIT_OK
    printed = capsys.readouterr()
    assert "flywheel: warning: flywheel:storage.credentials.secretAccessKey is plain text" in printed.err
    _no_canary(printed.out, printed.err, *(p.read_text() for p in (tmp_path / "out").rglob("*") if p.is_file()))


def test_storage_protect_false_renders_with_a_policy_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack = stack_with({"storage": _s3_storage(protect=False)})
    stack.secret_keys = ["flywheel:storage"]
    document = _stack_document(stack)
    document["config"]["flywheel:storage"]["credentials"] = {
        "accessKeyId": {"secure": "v1:AAAA"},
        "secretAccessKey": {"secure": "v1:BBBB"},
    }
    stack_file = _write_stack(tmp_path / "Pulumi.unprotected.yaml", document)
    assert render_tool.render("unprotected", tmp_path / "a", stack_file) == render_tool.EXIT_POLICY
    assert "storage.protect is false" in capsys.readouterr().err
    lowered = tmp_path / "policy-config.json"
    lowered.write_text(json.dumps({"storage-private-and-kept": "advisory"}))
    assert render_tool.render("unprotected", tmp_path / "b", stack_file, lowered) == render_tool.EXIT_OK
    lowered.write_text(json.dumps({"no-such-policy": "advisory"}))
    assert render_tool.render("unprotected", tmp_path / "c", stack_file, lowered) == render_tool.EXIT_CONFIG
    assert "unknown policy name(s) in policy config: no-such-policy" in capsys.readouterr().err


# --- render_diff ------------------------------------------------------------------------------------------------


def _config_map(stack: str, name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "urn": f"urn:pulumi:{stack}::flywheel::kubernetes:core/v1:ConfigMap::cfg",
        "type": "kubernetes:core/v1:ConfigMap",
        "name": "cfg",
        "inputs": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"a": "b"}}}
        | ({"data": data} if data else {}),
        "options": {},
    }


def _render_of(*resources: dict[str, Any], digests: dict[str, Any] | None = None) -> Render:
    return Render(Path("x"), {r["urn"]: r for r in resources}, {}, [], digests or {})


def test_a_kubernetes_name_change_is_a_replacement() -> None:
    base = _render_of(_config_map("dev", "server-toml-1", {}))
    head = _render_of(_config_map("dev", "server-toml-2", {}))
    (change,) = report_from_renders("dev", base, head).changes
    assert change.op == "replace" and change.replace_reasons == ["metadata.name"]
    relabel = _config_map("dev", "server-toml-1", {})
    relabel["inputs"]["metadata"]["labels"] = {"a": "c"}
    (change,) = report_from_renders("dev", base, _render_of(relabel)).changes
    assert change.op == "update"


def test_two_different_stacks_are_matched_and_flagged() -> None:
    report = report_from_renders(
        "dev", _render_of(_config_map("prod", "n", {})), _render_of(_config_map("dev", "n", {}))
    )
    assert report.changes == [] and report.counts == {"same": 1}
    assert "different stacks (base prod, head dev)" in report.notes[0]


def test_secret_value_changes_are_listed_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    def digests(dsn: str) -> dict[str, Any]:
        monitor = RecordingMonitor(FlywheelMocks())
        run_program("dev", stack_with({"database": {"backend": "external", "url": dsn}}), monitor=monitor)
        return render_tool.secret_digests(monitor, salt="test-salt")

    old, new = digests(_dsn()), digests(_dsn().replace("db.example.com", "db2.example.com"))
    urn = next(u for u in new["resources"] if u.endswith("::attic-db-url"))
    assert old["salt"] == new["salt"] and old["resources"][urn] != new["resources"][urn]
    _no_canary(json.dumps(old), json.dumps(new))
    secret = {"urn": urn, "type": "kubernetes:core/v1:Secret", "name": "attic-db-url", "options": {}}
    secret["inputs"] = {"kind": "Secret", "metadata": {"name": "attic-db-url"}, "data": {"uri": "[secret]"}}
    report = report_from_renders("dev", _render_of(secret, digests=old), _render_of(secret, digests=new))
    (change,) = report.changes
    assert change.op == "replace" and [(p.path, p.old, p.new) for p in change.properties] == [
        ("data.uri", "[secret]", "[secret]")
    ]
    other_salt = {**new, "salt": "different"}
    assert (
        report_from_renders("dev", _render_of(secret, digests=old), _render_of(secret, digests=other_salt)).changes
        == []
    )


def test_a_changed_secure_value_shows_in_the_diff_and_its_ciphertext_nowhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ciphertexts = {"a": "v1:canary-ciphertext-db1-5d", "b": "v1:canary-ciphertext-db2-7e"}

    def render_with(salt: str | None, name: str) -> Render:
        if salt is None:
            monkeypatch.delenv(render_tool.SALT_ENV, raising=False)
        else:
            monkeypatch.setenv(render_tool.SALT_ENV, salt)
        document = _stack_document(stack_with({"database": {"backend": "external", "url": "x"}}))
        document["config"]["flywheel:database"]["url"] = {"secure": ciphertexts[name[-1]]}
        stack_file = _write_stack(tmp_path / f"Pulumi.{name}.yaml", document)
        assert render_tool.render("dev", tmp_path / name, stack_file) == render_tool.EXIT_OK
        return load_render(tmp_path / name)

    report = report_from_renders("dev", render_with("salt", "salted-a"), render_with("salt", "salted-b"))
    (change,) = report.changes
    assert change.name == "attic-db-url" and [(p.path, p.old, p.new) for p in change.properties] == [
        ("data.uri", "[secret]", "[secret]")
    ]
    assert "Secure config value `flywheel:database.url` changed (value redacted)." in report.notes
    unsalted = report_from_renders("dev", render_with(None, "plain-a"), render_with(None, "plain-b"))
    assert unsalted.changes == [] and any("Secret values are not compared" in n for n in unsalted.notes)
    printed = capsys.readouterr()
    texts = [printed.out, printed.err, render_note(report, limit=10**6), render_note(unsalted, limit=10**6)]
    texts += [p.read_text() for p in tmp_path.rglob("*") if p.is_file() and not p.name.startswith("Pulumi.")]
    assert not [t for t in texts for c in ciphertexts.values() if c.removeprefix("v1:") in t]


# --- YAML-level fuzzing -----------------------------------------------------------------------------------------

YAML_SCALARS = [
    "2024-01-01",
    "2024-01-01T10:00:00Z",
    "yes",
    "on",
    "off",
    ".inf",
    "-.inf",
    ".nan",
    "0x1f",
    "017",
    "0o17",
    "1e3",
    "1_000",
    "1:30",
    "~",
    "''",
    "!!binary aGVsbG8=",
    "true",
    "-1",
    "99999999999999999999",
    "[]",
    "{}",
    "{a: {b: [1, {c: 2024-01-01}]}}",
    "[1, [2, [3]]]",
    f"{{secure: v1:{CANARY_TOKEN}}}",
]


def _fuzz_base() -> dict[str, Any]:
    """The dev stack with canaries in every free-form and secret place, as plain text."""
    raw = dev_raw()
    raw["runners"][0]["environment"]["GITHUB_TOKEN"] = CANARY_TOKEN
    raw["gitlab"]["extraVariables"]["DEPLOY_HOOK"] = {"value": CANARY_VARIABLE, "masked": True}
    raw["database"] = {"backend": "external", "url": _dsn()}
    raw["storage"] = _s3_storage()
    return {"config": {f"flywheel:{k}": v for k, v in raw.items()}}


def _leaf_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        found += _leaf_paths(value, (*prefix, key))
    return found


SENTINEL = "FUZZ-SENTINEL-{}"
# Encoding mutations of the stack file's bytes: each is refused in one line or read as the CLI reads it.
ENCODINGS = ["utf-8", "utf-8 with a BOM", "utf-16 with a BOM", "an invalid byte", "a NUL", "a truncated character"]
FUZZ_SETTINGS = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=IN_CI,
    database=None if IN_CI else settings.default.database,
    suppress_health_check=[HealthCheck.too_slow],
)


def _mutated_text(data: st.DataObject, base: dict[str, Any], most: int = 3) -> str:
    """``base`` with 0..``most`` YAML-level mutations (types, dates, nesting, deletions) and maybe a duplicated line."""
    document = copy.deepcopy(base)
    raw_texts: dict[str, str] = {}
    for index in range(data.draw(st.integers(0 if most < 3 else 1, most), label="mutations")):
        paths = [p for p in _leaf_paths(document["config"]) if p]
        path = data.draw(st.sampled_from(paths), label="path")
        parent: Any = document["config"]
        for part in path[:-1]:
            parent = parent[part]
        action = data.draw(st.sampled_from(["scalar", "spoil", "nest-list", "nest-map", "delete"]), label="action")
        leaf = parent[path[-1]]
        if action == "spoil" and isinstance(leaf, str) and not leaf.startswith(SENTINEL[:14]):
            parent[path[-1]] = "not valid: " + leaf  # still holds the canary, now invalid
        elif action == "scalar":
            parent[path[-1]] = SENTINEL.format(index)
            raw_texts[SENTINEL.format(index)] = data.draw(st.sampled_from(YAML_SCALARS), label="yaml")
        elif action == "nest-list":
            parent[path[-1]] = [leaf]
        elif action == "nest-map":
            parent[path[-1]] = {"value": leaf}
        elif action == "delete" and isinstance(parent, dict) and len(path) > 1:
            del parent[path[-1]]
    text = yaml.safe_dump(document, sort_keys=False, width=1000)
    for sentinel, raw in raw_texts.items():
        text = text.replace(sentinel, raw)
    if data.draw(st.booleans(), label="duplicate a line"):
        lines = text.splitlines()
        candidates = [i for i, line in enumerate(lines) if re.match(r"^\s*[A-Za-z][\w:.-]*: \S", line)]
        if candidates:
            at = data.draw(st.sampled_from(candidates), label="line")
            lines.insert(at + 1, lines[at])
            text = "\n".join(lines) + "\n"
    return text


def _encoded(data: st.DataObject, text: str) -> bytes:
    encoding = data.draw(st.sampled_from(ENCODINGS), label="encoding")
    raw = text.encode()
    at = data.draw(st.integers(0, len(raw)), label="byte offset")
    if encoding == "utf-8 with a BOM":
        return b"\xef\xbb\xbf" + raw
    if encoding == "utf-16 with a BOM":
        return text.encode("utf-16")
    if encoding == "an invalid byte":
        return raw[:at] + data.draw(st.sampled_from([b"\xff", b"\xe9", b"\x80", b"\xc3("]), label="byte") + raw[at:]
    if encoding == "a NUL":
        return raw[:at] + b"\x00" + raw[at:]
    if encoding == "a truncated character":
        return raw + "é".encode()[:1]
    return raw


@FUZZ_SETTINGS
@given(data=st.data())
def test_yaml_level_mutations_give_one_line_errors_and_never_a_canary(data: st.DataObject) -> None:
    content = _encoded(data, _mutated_text(data, _fuzz_base()))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "Pulumi.fuzz.yaml"
        path.write_bytes(content)
        try:
            warnings = validate_config(read_stack_file(path))
        except RenderConfigError as err:
            assert err.problems
            for problem in err.problems:
                assert "\n" not in problem and "Traceback" not in problem, problem
                assert problem.startswith(("flywheel", "gitlab:", str(path))), problem
            _no_canary(*err.problems)
            return
    _no_canary(*warnings)


# The rendering half: few examples (a render takes about a second), each an accepted config rendered in full.
RENDER_FUZZ_EXAMPLES = int(os.environ.get("FLYWHEEL_RENDER_FUZZ_EXAMPLES", "8"))
CANARY_CIPHERTEXTS = {
    "accessKeyId": "v1:canary-ciphertext-key-id-1a",
    "secretAccessKey": "v1:canary-ciphertext-secret-key-2b",
    "url": "v1:canary-ciphertext-dsn-3c",
    "DEPLOY_HOOK": "v1:canary-ciphertext-variable-4d",
}


def _secure_fuzz_base() -> dict[str, Any]:
    """The dev stack with a canary ciphertext in every place a secure value is taken."""
    document = {"config": {f"flywheel:{k}": v for k, v in dev_raw().items()}}
    config = document["config"]
    config["flywheel:storage"] = _s3_storage(
        credentials={k: {"secure": CANARY_CIPHERTEXTS[k]} for k in ("accessKeyId", "secretAccessKey")}
    )
    config["flywheel:database"] = {"backend": "external", "url": {"secure": CANARY_CIPHERTEXTS["url"]}}
    config["flywheel:gitlab"]["extraVariables"]["DEPLOY_HOOK"] = {
        "value": {"secure": CANARY_CIPHERTEXTS["DEPLOY_HOOK"]}
    }
    return document


@settings(FUZZ_SETTINGS, max_examples=RENDER_FUZZ_EXAMPLES, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_accepted_mutations_render_in_full_and_never_show_a_ciphertext(data: st.DataObject) -> None:
    import contextlib
    import io

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "Pulumi.fuzz.yaml"
        path.write_bytes(_encoded(data, _mutated_text(data, _secure_fuzz_base(), most=2)))
        try:
            validate_config(read_stack_file(path))
        except RenderConfigError:
            assume(False)  # refused configs are the other test's; this one renders what is accepted
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = render_tool.render("fuzz", Path(folder) / "out", path)
        texts = [out.getvalue(), err.getvalue()]
        texts += [p.read_text(errors="replace") for p in (Path(folder) / "out").rglob("*") if p.is_file()]
    assert code in (render_tool.EXIT_OK, render_tool.EXIT_POLICY, render_tool.EXIT_CONFIG), texts[1]
    assert "Traceback" not in texts[1]
    leaked = [c for c in CANARY_CIPHERTEXTS.values() for t in texts if c.removeprefix("v1:") in t]
    assert not leaked, leaked
