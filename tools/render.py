"""Offline render: run the Pulumi program under the SDK's mock monitor and write its desired state.

    python -m tools.render --stack dev --out build/dev [--stack-file PATH] [--policy-config FILE]

Writes resources.json, manifests/, files/, outputs.json and policy-report.json, then prints a
summary. Exit codes: 0 clean, 1 mandatory policy violation, 2 invalid configuration or --out, 3 an internal
error (a bug in flywheel, never a verdict on the configuration).
Needs no cluster, no GitLab, no Pulumi CLI and no network.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import runpy
import shutil
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from tools.mocks import RecordingMonitor

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "flywheel"
REDACTED = "[secret]"
UNKNOWN_TEXT = "[unknown]"
SECRET_DATA_FIELDS = ("data", "stringData")  # a Kubernetes Secret's fields, secret as a whole
# Rendering secure config offline: a value of the right shape stands in for what cannot be decrypted. With the salt
# set, {digest} is a keyed digest of the ciphertext, so a changed secure value changes the Secrets built from it.
PLACEHOLDERS = {("flywheel:database", "url"): "postgresql://offline:placeholder{digest}@offline.invalid:5432/attic"}

EXIT_OK, EXIT_POLICY, EXIT_CONFIG, EXIT_INTERNAL = 0, 1, 2, 3
TRACEBACK_ENV = "FLYWHEEL_TRACEBACK"  # set to 1: an internal error prints its traceback as well
# Written first into every render folder: the next render replaces only a folder holding it, and only these.
RENDER_MARKER = ".flywheel-render"
MARKER_TEXT = "written by `python -m tools.render`; the next render replaces the entries listed in tools/render.py\n"
DIGESTS_FILE = "secret-digests.json"
RENDER_ENTRIES = (
    RENDER_MARKER,
    "resources.json",
    "outputs.json",
    "policy-report.json",
    DIGESTS_FILE,
    "manifests",
    "files",
)
# A random value the CI job sets for both renders it compares: keyed digests of Secret values then show which
# changed, and without the key (never written anywhere) a digest says nothing about the value.
SALT_ENV = "FLYWHEEL_RENDER_SALT"


@dataclass
class StackConfig:
    values: dict[str, str]
    secret_keys: list[str] = field(default_factory=list)  # top-level keys holding a secure value (as the engine)
    # every secure leaf, ('flywheel:storage', 'credentials', 'accessKeyId') (known offline only); None: secret_keys
    secret_paths: list[tuple[str, ...]] | None = None
    # keyed digest of each secure value's ciphertext, by path ('flywheel:database.url'); empty without the salt
    secure_digests: dict[str, str] = field(default_factory=dict)


@dataclass
class RenderResult:
    resources: list[dict[str, Any]]
    files: dict[str, str]
    outputs: dict[str, Any]
    # {"salt": id, "resources": {urn: {"data.key": digest}}, "config": {"flywheel:database.url": digest}};
    # empty unless FLYWHEEL_RENDER_SALT is set
    secret_digests: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # what the program logged as warning or error


class RenderConfigError(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# --- stack file -> Pulumi config ---------------------------------------------------------------


def read_stack_file(path: Path, salt: str | None = None) -> StackConfig:
    """Read ``Pulumi.<stack>.yaml`` the way the CLI hands it to the program (objects as JSON).

    Parsed as the CLI parses it (``tools.stack_yaml``): duplicate keys are an error, unquoted dates become
    Go's time text, ``.inf``/``.nan`` are refused. Records every ``secure:`` leaf's path for the error
    messages; the program itself, like the engine, only learns which top-level keys hold one. With a salt
    (default: ``FLYWHEEL_RENDER_SALT``) each placeholder carries a keyed digest of its ciphertext.
    """
    import os

    from tools.stack_yaml import StackFileError, decode_stack_file, load_stack_document

    try:
        document = load_stack_document(decode_stack_file(path.read_bytes()))
    except OSError as err:
        raise RenderConfigError([f"{path}: cannot read stack file ({err.strerror or err})"]) from None
    except StackFileError as err:
        raise RenderConfigError([f"{path}: {problem}" for problem in err.problems]) from None
    except ValueError as err:  # a value the reader did not foresee is still the file's problem: exit 2, not 3
        raise RenderConfigError(
            [
                f"{path}: a value this reader cannot parse ({type(err).__name__}; its text is not shown, it may be "
                "a secret); check the file with `pulumi config`, and report it on the flywheel issue tracker"
            ]
        ) from None
    raw = document.get("config") or {}
    if not isinstance(raw, dict):
        raise RenderConfigError([f"{path}: 'config' must be a mapping of key: value"])
    values: dict[str, str] = {}
    secret_keys: list[str] = []
    secret_paths: list[tuple[str, ...]] = []
    digests: dict[str, str] = {}
    key_bytes = (salt if salt is not None else os.environ.get(SALT_ENV, "")).encode()
    for key, value in raw.items():
        key = str(key)
        if ":" not in key:
            key = f"{PROJECT}:{key}"
        replaced, secure_paths = _replace_secure(key, (), value, key_bytes, digests)
        if secure_paths:
            secret_keys.append(key)
            secret_paths += [(key, *p) for p in secure_paths]
        values[key] = replaced if isinstance(replaced, str) else json.dumps(replaced)
    return StackConfig(values, sorted(secret_keys), sorted(secret_paths), dict(sorted(digests.items())))


def _replace_secure(
    key: str, path: tuple[str, ...], value: Any, salt: bytes = b"", digests: dict[str, str] | None = None
) -> tuple[Any, list[tuple[str, ...]]]:
    """Swap encrypted ``{secure: ...}`` leaves for placeholders; the paths where they were.

    With a ``salt`` a placeholder carries a keyed digest of the ciphertext (recorded in ``digests``): a changed
    secure value then changes what is built from it, and the ciphertext itself is written nowhere."""
    import hmac

    if isinstance(value, dict) and set(value) == {"secure"}:
        where = key + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in path)
        digest = ""
        if salt:
            digest = hmac.new(salt, json.dumps([key, *path, value["secure"]]).encode(), "sha256").hexdigest()[:32]
            if digests is not None:
                digests[where] = digest
        template = PLACEHOLDERS.get((key, ".".join(path)))
        if template is None:
            template = "offline-placeholder-" + hashlib.sha256(f"{key}{path}".encode()).hexdigest()[:12] + "{digest}"
        return template.format(digest=f"-{digest[:12]}" if digest else ""), [path]
    if isinstance(value, dict):
        found: list[tuple[str, ...]] = []
        out = {}
        for k, v in value.items():
            out[k], secret = _replace_secure(key, (*path, str(k)), v, salt, digests)
            found += secret
        return out, found
    if isinstance(value, list):
        items = [_replace_secure(key, (*path, str(i)), v, salt, digests) for i, v in enumerate(value)]
        return [v for v, _ in items], [p for _, paths in items for p in paths]
    return value, []


def validate_config(stack: StackConfig) -> list[str]:
    """Validate as the program will, with the exact secure paths known offline; the warnings."""
    from components.config import ConfigError, check_platform_config, namespace_problems, namespace_values

    # exact paths where the stack file gave them; a secret key without one (set in-process) is secret as a whole
    exact = stack.secret_paths or []
    secret: list[str | tuple[str, ...]] = [*exact, *(k for k in stack.secret_keys if k not in {p[0] for p in exact})]
    problems = namespace_problems(stack.values)
    if problems:
        raise RenderConfigError(problems)
    try:
        return check_platform_config(*namespace_values(stack.values, secret)).warnings
    except ConfigError as err:
        raise RenderConfigError(err.problems) from None


# --- running the program under mocks -----------------------------------------------------------


def run_under_mocks(
    main: Callable[[], Awaitable[None]],
    stack_name: str = "test",
    stack: StackConfig | None = None,
    monitor: RecordingMonitor | None = None,
    preview: bool = False,
) -> RecordingMonitor:
    """Run ``main`` as a Pulumi program under the mock monitor (with ``stack``'s config); the monitor it used.

    With ``preview`` the SDK runs as in `pulumi preview` (outputs the mocks leave out are unknown)."""
    import pulumi
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    from tools.mocks import FlywheelMocks, RecordingMonitor

    monitor = monitor or RecordingMonitor(FlywheelMocks())
    if stack is not None:
        pulumi.runtime.set_all_config(stack.values, stack.secret_keys)
    pulumi.runtime.set_mocks(
        monitor.mocks, project=PROJECT, stack=stack_name, preview=preview, monitor=monitor, logger=monitor.logger()
    )
    try:
        _sync_await(run_pulumi_func(main))
    except Exception as err:
        _forget_copies_of(err)
        raise
    return monitor


def _failure_chain(error: BaseException | None) -> list[BaseException]:
    chain: list[BaseException] = []
    while error is not None and error not in chain:
        chain.append(error)
        error = error.__cause__ or error.__context__
    return chain


def _forget_copies_of(error: BaseException) -> None:
    """Settle what the failed run left pending, and do not report its copies of the failure again.

    The SDK raises the first failure to the caller; the same failure sits in other futures of the run. Left alone,
    the next program's event loop settles them (and fails with the old error), and each is reported as "Future
    exception was never retrieved" at garbage collection, e.g. after pytest's summary. Only reports whose
    exception is (or was caused by) this failure are dropped; anything else reaches the loop's handler.
    """
    import asyncio

    from pulumi.runtime.settings import SETTINGS
    from pulumi.runtime.sync_await import _ensure_event_loop

    loop = _ensure_event_loop()
    known = _failure_chain(error)  # kept alive, so identity cannot match an unrelated later exception
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        copies = [e for e in _failure_chain(context.get("exception")) if any(e is k for k in known)]
        if context.get("message") == "Future exception was never retrieved" and copies:
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
    leftovers = [*SETTINGS.outputs, *SETTINGS.rpc_manager.rpcs]
    SETTINGS.outputs.clear()  # they belong to the failed run, not to the next one
    SETTINGS.rpc_manager.rpcs.clear()
    if leftovers and not loop.is_running():
        loop.run_until_complete(asyncio.wait([asyncio.ensure_future(f, loop=loop) for f in leftovers], timeout=10))
    for future in leftovers:
        if asyncio.isfuture(future) and future.done() and not future.cancelled():
            future.exception()  # retrieved: the failure the caller already has, or one caused by it
        elif asyncio.isfuture(future):
            future.cancel()


def registered_resources(monitor: RecordingMonitor) -> list[dict[str, Any]]:
    """What the monitor recorded, as resources.json holds it (sorted by URN, secrets redacted)."""
    return sorted((_resource_record(r) for r in monitor.registrations), key=lambda r: r["urn"])


def run_program(stack_name: str, stack: StackConfig, monitor: RecordingMonitor | None = None) -> RenderResult:
    """Run ``__main__.py`` under the mock monitor and collect what it registered."""
    import pulumi
    from pulumi.runtime.settings import get_root_resource

    from components.config import ConfigError

    program: dict[str, Any] = {}
    files: dict[str, str] = {}
    outputs: dict[str, Any] = {}

    async def main() -> None:
        program.update(runpy.run_path(str(ROOT / "__main__.py"), run_name="flywheel_program"))
        for path, content in sorted(program["platform"].rendered_files.items()):
            output = pulumi.Output.from_input(content)
            text = await output.future()
            files[path] = f"{REDACTED}\n" if await output.is_secret() else str(text)
        # The mock root stack registered its (empty) outputs before the program ran: read the exports here.
        for name, value in sorted(get_root_resource().outputs.items()):
            output = pulumi.Output.from_input(value)
            outputs[name] = REDACTED if await output.is_secret() else await output.future()

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    try:
        monitor = run_under_mocks(main, stack_name, stack, monitor)
    except ConfigError as err:
        raise RenderConfigError(err.problems) from None
    warnings = [message for level, message in monitor.log if level in ("WARNING", "ERROR")]
    digests = secret_digests(monitor, secure=stack.secure_digests)
    return RenderResult(registered_resources(monitor), files, _plain(outputs), digests, warnings)


def secret_digests(
    monitor: RecordingMonitor, salt: str | None = None, secure: dict[str, str] | None = None
) -> dict[str, Any]:
    """Keyed digests of every Kubernetes Secret's values (with ``FLYWHEEL_RENDER_SALT``; else none), and ``secure``:
    those of the secure config values (``StackConfig.secure_digests``), for one the Secrets may not show."""
    import hmac
    import os
    import re

    from pulumi.runtime import rpc

    salt = salt if salt is not None else os.environ.get(SALT_ENV, "")
    if not salt:
        return {}
    key = salt.encode()
    by_urn: dict[str, dict[str, str]] = {}
    for registration in monitor.registrations:
        inputs = registration.inputs
        if not registration.type.startswith("kubernetes:") or inputs.get("kind") != "Secret":
            continue
        for data_field in SECRET_DATA_FIELDS:
            values = inputs.get(data_field)
            if rpc.is_rpc_secret(values):
                values = rpc.unwrap_rpc_secret(values)
            for name, value in sorted((values or {}).items()) if isinstance(values, dict) else ():
                plain = rpc.unwrap_rpc_secret(value) if rpc.is_rpc_secret(value) else value
                path = (
                    f"{data_field}.{name}"
                    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name)
                    else (f"{data_field}[{json.dumps(name)}]")
                )
                text = json.dumps(plain, sort_keys=True, default=str).encode()
                by_urn.setdefault(_engine_urn(registration.urn), {})[path] = hmac.new(key, text, "sha256").hexdigest()[
                    :32
                ]
    salt_id = hmac.new(key, b"flywheel-render-salt-id", "sha256").hexdigest()[:16]
    return {"salt": salt_id, "resources": dict(sorted(by_urn.items())), "config": dict(sorted((secure or {}).items()))}


def _engine_urn(urn: str) -> str:
    # The mock monitor prefixes the stack's type onto its children's URNs; the engine does not.
    return urn.replace("::pulumi:pulumi:Stack$", "::")


def _resource_record(registration: Any) -> dict[str, Any]:
    return {
        "urn": _engine_urn(registration.urn),
        "type": registration.type,
        "name": registration.name,
        "parent": _engine_urn(registration.parent),
        "custom": registration.custom,
        "inputs": _plain(registration.inputs),
        "options": {
            "protect": registration.protect,
            "retainOnDelete": registration.retain_on_delete,
            "dependsOn": [_engine_urn(urn) for urn in registration.depends_on],
        },
    }


def _redact(value: Any) -> Any:
    """A secret's shape without its content: keys of a secret mapping are kept (they are not secret)."""
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    return REDACTED


def _plain(value: Any) -> Any:
    """JSON-ready inputs: secrets redacted, unknowns marked, integral floats as ints."""
    from pulumi.runtime import rpc

    if rpc.is_rpc_secret(value):
        return _redact(rpc.unwrap_rpc_secret(value))
    if value is rpc.UNKNOWN or value == rpc.UNKNOWN:
        return UNKNOWN_TEXT
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_resource_sig:
            return value.get("urn", "")
        return {k: _plain(v) for k, v in value.items() if k != "__provider"}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# --- writing the desired state -----------------------------------------------------------------


def kubernetes_objects(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every Kubernetes object the program declares (Helm releases and providers excluded)."""
    objects = []
    for resource in resources:
        inputs = resource["inputs"]
        if not resource["type"].startswith("kubernetes:") or "kind" not in inputs or "apiVersion" not in inputs:
            continue
        manifest = {key: inputs[key] for key in ("apiVersion", "kind", "metadata") if key in inputs}
        manifest.update({k: v for k, v in inputs.items() if k not in manifest})
        if manifest["kind"] == "Secret":
            for key in SECRET_DATA_FIELDS:
                if isinstance(manifest.get(key), dict):
                    manifest[key] = dict.fromkeys(manifest[key], REDACTED)
        objects.append(manifest)
    return objects


def manifest_path(manifest: dict[str, Any]) -> str:
    metadata = manifest.get("metadata") or {}
    namespace = metadata.get("namespace") or "_cluster"
    return f"{namespace}/{manifest['kind'].lower()}-{metadata.get('name', 'unnamed')}.yaml"


class OutputFolderError(Exception):
    """``--out`` names a folder the render must not touch."""


def _render_entries(out: Path) -> list[Path]:
    return [out / name for name in RENDER_ENTRIES if (out / name).exists() or (out / name).is_symlink()]


def check_output_folder(out: Path) -> None:
    """Refuse an ``--out`` that is not a render: a render only ever replaces what a render wrote."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise OutputFolderError(f"--out {out}: not a folder; expected a new folder or one a render wrote")
    if out.is_dir() and not (out / RENDER_MARKER).is_file() and any(out.iterdir()):
        raise OutputFolderError(
            f"--out {out}: a folder that is not a render (no {RENDER_MARKER}) and not empty; refusing to replace it "
            "(expected a new or empty folder, or one a render wrote)"
        )
    _check_creatable(out)


def _check_creatable(out: Path) -> None:
    """Fail before rendering, not after: ``out`` must be a folder the render can write or create."""
    import tempfile

    existing = out
    while not existing.exists() and not existing.is_symlink() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputFolderError(f"--out {out}: {existing} is not a folder (expected a folder, or a path to create one)")
    try:  # access(2) says yes to root even where mkdir fails (/proc): try it, leaving nothing behind
        Path(tempfile.mkdtemp(prefix=".flywheel-render-check-", dir=existing)).rmdir()
    except OSError as err:
        raise OutputFolderError(
            f"--out {out}: cannot write in {existing} ({err.strerror or err}; expected a folder you can write)"
        ) from None


def clear_output(out: Path, keep_marker: bool = False) -> None:
    """Remove what an earlier render wrote into ``out`` (and nothing else), so no stale state outlives a failure."""
    if not (out / RENDER_MARKER).is_file():
        return
    for entry in _render_entries(out):
        if keep_marker and entry.name == RENDER_MARKER:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def write_output(out: Path, result: RenderResult, violations: list[dict[str, Any]]) -> None:
    check_output_folder(out)
    clear_output(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / RENDER_MARKER).write_text(MARKER_TEXT)
    try:
        (out / "manifests").mkdir()
        (out / "files").mkdir()
        _write_json(out / "resources.json", result.resources)
        _write_json(out / "outputs.json", result.outputs)
        _write_json(out / "policy-report.json", {"violations": violations})
        if result.secret_digests:
            _write_json(out / DIGESTS_FILE, result.secret_digests)
        for manifest in kubernetes_objects(result.resources):
            target = out / "manifests" / manifest_path(manifest)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(yaml.safe_dump(manifest, sort_keys=False, width=120))
        for relative, text in result.files.items():
            target = out / "files" / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    except BaseException:
        clear_output(out)  # half a render would be read back as a whole one
        raise


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")


# --- policies ------------------------------------------------------------------------------------


def evaluate_policies(resources: list[dict[str, Any]], config: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Run the policy pack over the recorded resources (see policies/), with a ``--policy-pack-config`` mapping."""
    from policies.evaluate import evaluate_resources

    return evaluate_resources(resources, config)


# --- entry point ---------------------------------------------------------------------------------


def render(stack_name: str, out: Path, stack_file: Path | None = None, policy_config: Path | None = None) -> int:
    started = time.perf_counter()  # the Pulumi SDK is imported after this, so its cost is counted
    stack_file = stack_file or ROOT / f"Pulumi.{stack_name}.yaml"
    from policies.evaluate import PolicyConfigError, resolve_config
    from tools.check_policies import UnreadableInputError, load_config

    try:
        check_output_folder(out)
        pack_config = load_config(policy_config)
        resolve_config(pack_config)
    except (OutputFolderError, UnreadableInputError, PolicyConfigError) as err:
        print(f"flywheel render: {err}", file=sys.stderr)
        return EXIT_CONFIG
    clear_output(out, keep_marker=True)  # from here on, a failure leaves no earlier render to be mistaken for this
    try:
        stack = read_stack_file(stack_file)
        warnings = validate_config(stack)
        result = run_program(stack_name, stack)
    except RenderConfigError as err:
        print(f"flywheel: stack '{stack_name}' has an invalid configuration ({stack_file.name}):", file=sys.stderr)
        for problem in err.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_CONFIG
    # the program says the config warnings again through the engine (components/config.py): each once
    for warning in dict.fromkeys([*warnings, *result.warnings]):
        print(f"flywheel: warning: {warning}", file=sys.stderr)
    violations = evaluate_policies(result.resources, pack_config)
    try:
        write_output(out, result, violations)
    except OutputFolderError as err:  # --out changed while the program ran
        print(f"flywheel render: {err}", file=sys.stderr)
        return EXIT_CONFIG
    except OSError as err:  # disk full, a folder gone: the strerror only, a file name may carry a config value
        print(
            f"flywheel render: --out {out}: cannot write the render ({err.strerror or type(err).__name__}); "
            "nothing of it was kept (expected a writable folder with free space)",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    mandatory = [v for v in violations if v["enforcementLevel"] == "mandatory"]
    _print_summary(stack_name, out, result, violations, time.perf_counter() - started)
    return EXIT_POLICY if mandatory else EXIT_OK


def _print_summary(
    stack: str, out: Path, result: RenderResult, violations: list[dict[str, Any]], seconds: float
) -> None:
    by_type = Counter(r["type"] for r in result.resources)
    print(f"flywheel render: stack '{stack}' -> {out}")
    print(f"  {len(result.resources)} resources:")
    for typ, count in sorted(by_type.items()):
        print(f"    {count:4d}  {typ}")
    print(f"  {len(kubernetes_objects(result.resources))} Kubernetes manifests, {len(result.files)} rendered files")
    if not violations:
        print("  policy pack: no violations")
    for violation in violations:
        print(
            f"  policy {violation['enforcementLevel'].upper()} {violation['policyName']}: "
            f"{violation['urn'] or '(stack)'}: {violation['message']}"
        )
    print(f"  took {seconds:.2f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.render", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev", help="stack name (default: dev)")
    parser.add_argument("--out", type=Path, help="output folder (default: build/<stack>)")
    parser.add_argument("--stack-file", type=Path, help="stack config file (default: Pulumi.<stack>.yaml)")
    parser.add_argument("--policy-config", type=Path, help="policy pack config JSON (as for --policy-pack-config)")
    args = parser.parse_args(argv)
    try:
        return render(args.stack, args.out or ROOT / "build" / args.stack, args.stack_file, args.policy_config)
    except Exception as err:  # a bug: its own exit code, so it is never read as a verdict on the input
        raise SystemExit(report_internal_error("flywheel render", err)) from err


def report_internal_error(tool: str, error: Exception) -> int:
    """One line for an error no check expected (a bug), with its own exit code: never read as a policy verdict.

    The message names the exception's type and where it was raised, not its text: that may quote a config value.
    """
    import os
    import traceback

    frames = traceback.extract_tb(error.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno} ({frames[-1].name})" if frames else ""
    print(
        f"{tool}: internal error, a bug in flywheel and not your configuration: {type(error).__name__}{where}; "
        f"please report it on the flywheel issue tracker with the command you ran ({TRACEBACK_ENV}=1 shows the "
        "traceback)",
        file=sys.stderr,
    )
    if os.environ.get(TRACEBACK_ENV) == "1":
        traceback.print_exception(error, file=sys.stderr)
    return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
