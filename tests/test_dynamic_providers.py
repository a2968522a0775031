"""Every dynamic provider, through the SDK's real dynamic-provider host, with the values the engine sends.

Check and Diff run with an Unknown in place of each input and of each part of one (what a preview sends when
a value comes from a resource not created yet); Create, Update and Read run with known values as the engine
marshals them (doubles, secrets stripped). A provider added to components/ without a case here fails the
first test.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pulumi.dynamic
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pulumi.runtime.proto import provider_pb2

import components
from components.attic_token import CI_PUSH, AtticTokenProvider, cache_grants
from components.s3_bucket import S3BucketProvider
from tests.engine_host import UNKNOWN, DynamicHost, Secret, dynamic_host, wire

pytest_plugins = ["tests.s3_servers"]  # the seaweedfs fixture


@dataclass(frozen=True)
class Case:
    provider: Callable[[], pulumi.dynamic.ResourceProvider]
    inputs: Callable[[pytest.FixtureRequest], dict[str, Any]]
    slow: bool = False


def _rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()


def attic_token_inputs(_request: Any) -> dict[str, Any]:
    return {
        "claims": {"sub": "flywheel/flywheel/ci-push", "caches": cache_grants({"main": CI_PUSH})},
        "signing_key": Secret(_rsa_pem()),
        "validity_seconds": 90 * 86400,
        "rotation_window_seconds": 14 * 86400,
    }


def s3_bucket_inputs(request: pytest.FixtureRequest) -> dict[str, Any]:
    server = request.getfixturevalue("seaweedfs")
    props: dict[str, Any] = server.props(
        f"flywheel-roundtrip-{uuid.uuid4().hex[:10]}", bazelPrefix="bazel/", bazelExpiryDays=30
    )
    return props | {"accessKeyId": Secret(props["accessKeyId"]), "secretAccessKey": Secret(props["secretAccessKey"])}


CASES: dict[type[pulumi.dynamic.ResourceProvider], Case] = {
    AtticTokenProvider: Case(AtticTokenProvider, attic_token_inputs),
    S3BucketProvider: Case(S3BucketProvider, s3_bucket_inputs, slow=True),
}


def dynamic_providers() -> set[type[pulumi.dynamic.ResourceProvider]]:
    found = set()
    for module_info in pkgutil.iter_modules(components.__path__):
        module = importlib.import_module(f"components.{module_info.name}")
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, pulumi.dynamic.ResourceProvider) and value.__module__ == module.__name__:
                found.add(value)
    return found


def test_every_dynamic_provider_has_a_round_trip_case() -> None:
    assert dynamic_providers() == set(CASES)


def unknown_variants(inputs: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``inputs`` with an Unknown in place of each value, at every depth (a whole object, or one leaf)."""

    def walk(value: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
        yield path, UNKNOWN
        if isinstance(value, dict):
            for key, inner in value.items():
                for inner_path, _ in walk(inner, (*path, key)):
                    yield inner_path, UNKNOWN

    def replaced(value: Any, path: tuple[str, ...]) -> Any:
        if not path:
            return UNKNOWN
        return {**value, path[0]: replaced(value[path[0]], path[1:])}

    for key, value in inputs.items():
        for path, _ in walk(value, (key,)):
            yield ".".join(path), replaced(inputs, path)


def at(data: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        data = data[part]
    return data


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DynamicHost]:
    with dynamic_host(tmp_path_factory.mktemp("dynamic-host")) as running:
        yield running


def case_params() -> list[Any]:
    return [
        pytest.param(kind, marks=[pytest.mark.slow] if case.slow else [], id=kind.__name__)
        for kind, case in CASES.items()
    ]


@pytest.mark.parametrize("kind", case_params())
def test_round_trip_with_unknowns_in_every_input(
    kind: type[pulumi.dynamic.ResourceProvider], host: DynamicHost, request: pytest.FixtureRequest
) -> None:
    case = CASES[kind]
    provider = case.provider()
    inputs = case.inputs(request)

    checked = host.check(provider, inputs)
    assert list(checked.failures) == []
    created = host.create(provider, wire(checked.inputs))
    state = wire(created.properties)
    assert host.diff(provider, created.id, state, inputs).changes == provider_pb2.DiffResponse.DIFF_NONE

    variants = list(unknown_variants(inputs))
    assert len(variants) > len(inputs)  # partial unknowns too, not only whole inputs
    for path, news in variants:
        try:
            checked = host.check(provider, news, olds=inputs)
            diff = host.diff(provider, created.id, state, news)
        except grpc.RpcError as err:
            pytest.fail(f"{kind.__name__} with {path} unknown: {err.details()}")  # type: ignore[attr-defined]
        assert list(checked.failures) == [], path
        assert at(wire(checked.inputs), path) == UNKNOWN, f"{path}: Check must hand the unknown back"
        assert diff.changes == provider_pb2.DiffResponse.DIFF_SOME, f"{path}: an unknown may be a change"

    updated = host.update(provider, created.id, state, inputs)
    read = host.read(provider, created.id, wire(updated.properties))
    assert read.id == created.id


def test_warnings_reach_the_engine_as_warnings(host: DynamicHost, tmp_path: Path) -> None:
    """provider_host.warn in the host calls the engine's Log with WARNING (stderr would be shown as info)."""

    class WarningProvider(pulumi.dynamic.ResourceProvider):
        def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
            from components import provider_host

            provider_host.warn("store does not implement PublicAccessBlock")
            return pulumi.dynamic.CreateResult("x", {})

    host.create(WarningProvider(), {})
    assert "store does not implement PublicAccessBlock" in host.engine.warnings()
    assert "store does not implement PublicAccessBlock" not in host.stderr()


def test_a_one_line_error_leaves_the_shared_hosts_tracebacks_alone(host: DynamicHost) -> None:
    """S3Bucket's user-facing error is one line; a later bug in another provider of the same host still has
    its traceback (the host formats with traceback.format_exc, dynamic/__main__.py:86)."""
    unreachable = {
        "endpoint": "http://127.0.0.1:9",  # the discard port: nothing listens, the connection is refused at once
        "region": "us-east-1",
        "bucket": "flywheel-unreachable",
        "tags": {},
        "abortIncompleteUploadsDays": 7,
        "retainOnDelete": True,
        "accessKeyId": Secret("AKIAEXAMPLEEXAMPLE00"),
        "secretAccessKey": Secret("never-printed-secret-for-this-test-000"),
    }
    with pytest.raises(grpc.RpcError) as refused:
        host.create(S3BucketProvider(), unreachable)
    details = refused.value.details()  # type: ignore[attr-defined]
    assert details.startswith("components.s3_bucket.S3BucketError: cannot reach S3 endpoint http://127.0.0.1:9")
    assert "Traceback" not in details and "never-printed" not in details

    broken = attic_token_inputs(None) | {"signing_key": Secret("not a PEM key")}
    with pytest.raises(grpc.RpcError) as bug:
        host.create(AtticTokenProvider(), broken)
    assert "Traceback (most recent call last)" in bug.value.details()  # type: ignore[attr-defined]


class WarningProvider(pulumi.dynamic.ResourceProvider):
    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        from components import provider_host

        provider_host.warn("store does not implement Tagging")
        return pulumi.dynamic.CreateResult("x", {})


def test_a_warning_never_fails_the_call_when_the_engine_cannot_take_it(tmp_path: Path) -> None:
    """A host given an engine address nothing listens on still completes the call, saying it on stderr."""
    with dynamic_host(tmp_path, engine_address="127.0.0.1:9") as unreachable:
        assert unreachable.create(WarningProvider(), {}).id == "x"
        assert "warning: store does not implement Tagging" in unreachable.stderr()
