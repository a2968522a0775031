"""The stand-in provider plugins (lab/providers), driven over real gRPC the way the engine drives them.

They are stand-ins for the Go plugins pulumi-gitlab 10.4.0, pulumi-random 4.21.4 and pulumi-tls 5.6.2,
which the Go module proxy here cannot build. Each test sends what the engine sends (Structs of doubles,
secret wrappers, the unknown sentinel during preview) and asserts on what comes back on the wire.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import grpc
import pulumi_gitlab
import pulumi_random
import pulumi_tls
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from pulumi.runtime.proto import provider_pb2

from lab.gitlab_api import REDACTION, GitLabStandIn, read_record, seeded
from tests.provider_plugins import UNKNOWN, Plugin, is_secret, plain, reveal, running, secret

TOKEN = "glpat-lab-provider-0001"
GROUP, GROUP_ID = "acme/platform", 4242
PROJECT, PROJECT_ID = "acme/platform/ci-templates", 7
ATTIC_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjaSJ9.c2lnbmF0dXJl"
PRIVATE_KEY = "tls:index/privateKey:PrivateKey"
PASSWORD = "random:index/randomPassword:RandomPassword"
STRING = "random:index/randomString:RandomString"
RUNNER = "gitlab:index/userRunner:UserRunner"
VARIABLE = "gitlab:index/groupVariable:GroupVariable"
FILE = "gitlab:index/repositoryFile:RepositoryFile"
RELEASE = "gitlab:index/release:Release"
NONE, SOME = provider_pb2.DiffResponse.DIFF_NONE, provider_pb2.DiffResponse.DIFF_SOME


def deploy(plugin: Plugin, pulumi_type: str, news: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Check then Create, as `pulumi up` does: (id, checked inputs, outputs as sent back)."""
    checked = plugin.check(pulumi_type, news)
    assert list(checked.failures) == []
    inputs = plain(checked.inputs)
    created = plugin.create(pulumi_type, inputs)
    return created.id, inputs, plain(created.properties)


def second_up(plugin: Plugin, pulumi_type: str, rid: str, inputs: dict[str, Any], outputs: dict[str, Any]) -> Any:
    """The Diff of a second `pulumi up` with an unchanged program."""
    again = plain(plugin.check(pulumi_type, inputs, olds=inputs).inputs)
    return plugin.diff(pulumi_type, rid, outputs, inputs, again)


@pytest.mark.parametrize(
    ("name", "sdk"), [("gitlab", pulumi_gitlab), ("random", pulumi_random), ("tls", pulumi_tls)], ids=str
)
def test_launcher_reports_the_version_the_sdk_asks_for(name: str, sdk: Any) -> None:
    wanted = json.loads((Path(sdk.__file__).parent / "pulumi-plugin.json").read_text())
    assert wanted["name"] == name
    with running(name) as plugin:
        assert plugin.plugin_info().version == wanted["version"]


# --- tls ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls() -> Iterator[Plugin]:
    with running("tls") as plugin:
        yield plugin


def test_rsa_key_is_real_pkcs1_and_its_private_forms_are_secret(tls: Plugin) -> None:
    rid, inputs, outputs = deploy(tls, PRIVATE_KEY, {"algorithm": "RSA", "rsaBits": 2048})
    assert inputs == {"algorithm": "RSA", "rsaBits": 2048.0, "ecdsaCurve": "P224"}
    for key in ("privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh"):
        assert is_secret(outputs[key]), key
    for key in ("publicKeyPem", "publicKeyOpenssh", "publicKeyFingerprintSha256"):
        assert isinstance(outputs[key], str), key
    values = reveal(outputs)
    assert values["privateKeyPem"].startswith("-----BEGIN RSA PRIVATE KEY-----\n")
    assert values["privateKeyPemPkcs8"].startswith("-----BEGIN PRIVATE KEY-----\n")
    key = serialization.load_pem_private_key(values["privateKeyPem"].encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    public_der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert rid == hashlib.sha1(public_der).hexdigest()  # noqa: S324
    assert values["publicKeyOpenssh"].startswith("ssh-rsa ") and values["publicKeyOpenssh"].endswith("\n")


def test_ed25519_key_gives_pkcs8_pem_and_openssh_fingerprints(tls: Plugin) -> None:
    _, _, outputs = deploy(tls, PRIVATE_KEY, {"algorithm": "ED25519"})
    values = reveal(outputs)
    key = serialization.load_pem_private_key(values["privateKeyPem"].encode(), password=None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    assert values["privateKeyPem"].startswith("-----BEGIN PRIVATE KEY-----\n")
    blob = base64.b64decode(values["publicKeyOpenssh"].split()[1])
    sha256 = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    assert values["publicKeyFingerprintSha256"] == f"SHA256:{sha256}"
    assert re.fullmatch(r"([0-9a-f]{2}:){15}[0-9a-f]{2}", values["publicKeyFingerprintMd5"])
    assert values["privateKeyOpenssh"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")


def test_ecdsa_p224_has_no_openssh_forms(tls: Plugin) -> None:
    _, inputs, outputs = deploy(tls, PRIVATE_KEY, {"algorithm": "ECDSA"})
    assert inputs["ecdsaCurve"] == "P224"
    values = reveal(outputs)
    key = serialization.load_pem_private_key(values["privateKeyPem"].encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp224r1"
    assert values["privateKeyPem"].startswith("-----BEGIN EC PRIVATE KEY-----\n")
    assert (values["publicKeyOpenssh"], values["privateKeyOpenssh"], values["publicKeyFingerprintMd5"]) == ("", "", "")


def test_private_key_diff_is_stable_and_every_input_forces_replacement(tls: Plugin) -> None:
    rid, inputs, outputs = deploy(tls, PRIVATE_KEY, {"algorithm": "RSA", "rsaBits": 2048})
    assert second_up(tls, PRIVATE_KEY, rid, inputs, outputs).changes == NONE
    bigger = tls.diff(PRIVATE_KEY, rid, outputs, inputs, {**inputs, "rsaBits": 4096.0})
    assert (bigger.changes, list(bigger.replaces)) == (SOME, ["rsaBits"])
    assert bigger.detailedDiff["rsaBits"].kind == provider_pb2.PropertyDiff.UPDATE_REPLACE
    unknown = tls.diff(PRIVATE_KEY, rid, outputs, inputs, {**inputs, "algorithm": UNKNOWN})
    assert list(unknown.replaces) == ["algorithm"]


def test_private_key_preview_and_bad_input(tls: Plugin) -> None:
    preview = plain(tls.create(PRIVATE_KEY, {"algorithm": "RSA", "rsaBits": 2048.0}, preview=True).properties)
    assert preview["privateKeyPem"] == {
        "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
        "value": UNKNOWN,
    }
    assert preview["publicKeyPem"] == UNKNOWN
    failures = tls.check(PRIVATE_KEY, {"algorithm": "DSA"}).failures
    assert [(f.property, f.reason) for f in failures] == [("algorithm", "'DSA' is not one of RSA, ECDSA, ED25519")]
    assert list(tls.check(PRIVATE_KEY, {"algorithm": UNKNOWN}).failures) == []


# --- random ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def random_plugin() -> Iterator[Plugin]:
    with running("random") as plugin:
        yield plugin


def test_random_password_is_secret_with_a_matching_bcrypt_hash(random_plugin: Plugin) -> None:
    rid, inputs, outputs = deploy(random_plugin, PASSWORD, {"length": 40, "special": False})
    assert rid == "none"
    assert (inputs["upper"], inputs["numeric"], inputs["number"], inputs["minSpecial"]) == (True, True, True, 0.0)
    assert is_secret(outputs["result"]) and is_secret(outputs["bcryptHash"])
    result = outputs["result"]["value"]
    assert re.fullmatch(r"[A-Za-z0-9]{40}", result)
    assert outputs["bcryptHash"]["value"].startswith("$2a$10$")
    assert bcrypt.checkpw(result.encode(), outputs["bcryptHash"]["value"].encode())
    assert second_up(random_plugin, PASSWORD, rid, inputs, outputs).changes == NONE


def test_random_string_honours_the_character_sets_and_is_not_secret(random_plugin: Plugin) -> None:
    news = {"length": 20, "upper": True, "lower": False, "numeric": True, "special": False}
    rid, inputs, outputs = deploy(random_plugin, STRING, news)
    assert isinstance(outputs["result"], str) and rid == outputs["result"]
    assert re.fullmatch(r"[A-Z0-9]{20}", outputs["result"])
    assert second_up(random_plugin, STRING, rid, inputs, outputs).changes == NONE
    longer = random_plugin.diff(STRING, rid, outputs, inputs, {**inputs, "length": 24.0})
    assert list(longer.replaces) == ["length"]


def test_random_minimums_are_met_and_checked(random_plugin: Plugin) -> None:
    news = {"length": 8, "minUpper": 3, "minNumeric": 3, "special": False}
    _, _, outputs = deploy(random_plugin, STRING, news)
    assert sum(c.isupper() for c in outputs["result"]) >= 3
    assert sum(c.isdigit() for c in outputs["result"]) >= 3
    failures = random_plugin.check(STRING, {"length": 4, "minUpper": 3, "minLower": 3}).failures
    assert [f.property for f in failures] == ["length"]
    assert "below the sum of the min_* values (6)" in failures[0].reason


# --- gitlab (against the GitLab API stand-in) --------------------------------------------------


@pytest.fixture
def gitlab_api(tmp_path: Path) -> Iterator[GitLabStandIn]:
    with seeded(TOKEN, {GROUP: GROUP_ID}, {PROJECT: PROJECT_ID}, record=tmp_path / "requests.jsonl") as server:
        yield server


@pytest.fixture
def gitlab_plugin(gitlab_api: GitLabStandIn) -> Iterator[Plugin]:
    with running("gitlab") as plugin:
        # what pulumi_gitlab.Provider(base_url=..., token=secret) sends; the program passes <url>/api/v4/
        response = plugin.configure({"baseUrl": gitlab_api.api_url, "token": secret(TOKEN), "version": "10.4.0"})
        assert response.acceptSecrets
        yield plugin


def requests(api: GitLabStandIn) -> list[dict[str, Any]]:
    return read_record(api.record or Path())


def test_configure_checks_the_token_like_the_early_auth_check(gitlab_api: GitLabStandIn) -> None:
    with running("gitlab") as plugin:
        with pytest.raises(grpc.RpcError) as refused:
            plugin.configure({"baseUrl": gitlab_api.url, "token": secret("glpat-wrong-token")})
        message = refused.value.details()
        assert "GET http://127.0.0.1" in message and "/api/v4/user answered 401" in message
        assert "wrong-token" not in message and "Traceback" not in message
    assert requests(gitlab_api) == [
        {"auth": "bearer", "body": {}, "method": "GET", "path": "/api/v4/user", "query": {}, "status": 401}
    ]


def test_configure_waits_for_unknown_config_during_preview(gitlab_api: GitLabStandIn) -> None:
    with running("gitlab") as plugin:
        plugin.configure({"baseUrl": UNKNOWN, "token": secret(TOKEN)})
        preview = plugin.create(RUNNER, {"runnerType": "group_type", "groupId": 1.0}, preview=True)
        assert plain(preview.properties)["token"] == secret(UNKNOWN)
    assert requests(gitlab_api) == []


def test_user_runner_create_read_update_delete(gitlab_plugin: Plugin, gitlab_api: GitLabStandIn) -> None:
    news = {
        "runnerType": "group_type",
        "groupId": GROUP_ID,
        "tagLists": ["flywheel-nix", "amd64"],
        "untagged": False,
        "accessLevel": "not_protected",
        "description": "flywheel runner pool 'nix'",
    }
    rid, inputs, outputs = deploy(gitlab_plugin, RUNNER, news)
    assert is_secret(outputs["token"]) and outputs["token"]["value"].startswith("glrt-")
    assert outputs["groupId"] == float(GROUP_ID) and sorted(outputs["tagLists"]) == ["amd64", "flywheel-nix"]

    create = requests(gitlab_api)[-2]
    assert (create["method"], create["path"], create["auth"]) == ("POST", "/api/v4/user/runners", "bearer")
    # the engine sent 4242.0; the provider must send GitLab an integer
    raw = (gitlab_api.record or Path()).read_text()
    assert '"group_id": 4242,' in raw and "4242.0" not in raw
    assert create["body"]["run_untagged"] is False and create["body"]["tag_list"] == ["flywheel-nix", "amd64"]
    assert requests(gitlab_api)[-1]["path"] == f"/api/v4/runners/{rid}"

    read = gitlab_plugin.read(RUNNER, rid, outputs, inputs)
    assert read.id == rid and plain(read.properties) == outputs
    reordered = {**inputs, "tagLists": ["amd64", "flywheel-nix"]}
    assert gitlab_plugin.diff(RUNNER, rid, outputs, inputs, reordered).changes == NONE
    assert second_up(gitlab_plugin, RUNNER, rid, inputs, outputs).changes == NONE
    moved = gitlab_plugin.diff(RUNNER, rid, outputs, inputs, {**inputs, "groupId": 99.0})
    assert list(moved.replaces) == ["groupId"]

    renamed = {**inputs, "description": "renamed"}
    described = gitlab_plugin.diff(RUNNER, rid, outputs, inputs, renamed)
    assert (described.changes, list(described.replaces)) == (SOME, [])
    updated = plain(gitlab_plugin.update(RUNNER, rid, outputs, renamed).properties)
    assert updated["description"] == "renamed" and updated["token"] == outputs["token"]
    assert gitlab_api.state.runners[int(rid)].description == "renamed"

    gitlab_plugin.delete(RUNNER, rid, updated)
    assert gitlab_api.state.runners == {}
    assert gitlab_plugin.read(RUNNER, rid, updated, renamed).id == ""


def test_masked_hidden_group_variable_stays_secret_and_stable(gitlab_plugin: Plugin, gitlab_api: GitLabStandIn) -> None:
    news = {
        "group": GROUP,
        "key": "ATTIC_TOKEN",
        "value": secret(ATTIC_TOKEN),
        "masked": True,
        "hidden": True,
        "protected": False,
        "raw": True,
        "variableType": "env_var",
        "environmentScope": "*",
        "description": "Attic push token",
    }
    checked = gitlab_plugin.check(VARIABLE, news)
    inputs = plain(checked.inputs)
    assert is_secret(inputs["value"])
    created = gitlab_plugin.create(VARIABLE, inputs)
    outputs = plain(created.properties)
    assert created.id == "acme/platform:ATTIC_TOKEN:*"
    assert is_secret(outputs["value"]) and outputs["value"]["value"] == ATTIC_TOKEN
    assert (outputs["masked"], outputs["hidden"]) == (True, True)

    post = requests(gitlab_api)[-1]
    assert post["path"] == "/api/v4/groups/acme%2Fplatform/variables"
    assert (post["body"]["masked"], post["body"]["masked_and_hidden"], post["body"]["value"]) == (
        False,
        True,
        REDACTION,
    )
    assert ATTIC_TOKEN not in (gitlab_api.record or Path()).read_text()
    assert gitlab_api.state.variables[GROUP_ID][("ATTIC_TOKEN", "*")].value == ATTIC_TOKEN

    # GitLab returns null for a hidden value: Read keeps the configured one, so nothing drifts
    read = gitlab_plugin.read(VARIABLE, created.id, outputs, inputs)
    assert plain(read.properties) == outputs
    get = requests(gitlab_api)[-1]
    assert (get["method"], get["query"]) == ("GET", {"filter[environment_scope]": "*"})
    assert second_up(gitlab_plugin, VARIABLE, created.id, inputs, outputs).changes == NONE
    unhide = gitlab_plugin.diff(VARIABLE, created.id, outputs, inputs, {**inputs, "hidden": False})
    assert list(unhide.replaces) == ["hidden"]


def test_plain_group_variable_update_and_delete(gitlab_plugin: Plugin, gitlab_api: GitLabStandIn) -> None:
    news = {"group": GROUP, "key": "ATTIC_SERVER", "value": "https://attic.example.com", "masked": False}
    rid, inputs, outputs = deploy(gitlab_plugin, VARIABLE, news)
    assert inputs["environmentScope"] == "*" and outputs["value"] == "https://attic.example.com"
    assert requests(gitlab_api)[-1]["body"]["value"] == "https://attic.example.com"
    changed = {**inputs, "value": "https://cache.example.com"}
    assert list(gitlab_plugin.diff(VARIABLE, rid, outputs, inputs, changed).diffs) == ["value"]
    updated = plain(gitlab_plugin.update(VARIABLE, rid, outputs, changed).properties)
    assert updated["value"] == "https://cache.example.com"
    put = requests(gitlab_api)[-1]
    assert (put["method"], put["query"]) == ("PUT", {"filter[environment_scope]": "*"})
    assert "filter[environment_scope]" not in put["body"]
    gitlab_plugin.delete(VARIABLE, rid, updated)
    assert gitlab_api.state.variables[GROUP_ID] == {}


def test_unmaskable_value_fails_with_one_line_and_no_value(gitlab_plugin: Plugin) -> None:
    news = {"group": GROUP, "key": "SHORT", "value": secret("tiny"), "masked": True}
    with pytest.raises(grpc.RpcError) as refused:
        gitlab_plugin.create(VARIABLE, plain(gitlab_plugin.check(VARIABLE, news).inputs))
    message = refused.value.details()
    assert message.startswith("GitLab API error: POST groups/acme%2Fplatform/variables: 400")
    assert "\n" not in message and "tiny" not in message


def test_hidden_without_masked_is_a_check_failure(gitlab_plugin: Plugin) -> None:
    failures = gitlab_plugin.check(VARIABLE, {"group": GROUP, "key": "K", "value": "v", "hidden": True}).failures
    assert [f.property for f in failures] == ["hidden"]


def test_preview_with_unknowns_calls_no_api(gitlab_plugin: Plugin, gitlab_api: GitLabStandIn) -> None:
    before = len(requests(gitlab_api))
    news = {"group": GROUP, "key": "ATTIC_TOKEN", "value": secret(UNKNOWN), "masked": True, "hidden": True}
    checked = gitlab_plugin.check(VARIABLE, news)
    assert list(checked.failures) == []
    preview = plain(gitlab_plugin.create(VARIABLE, plain(checked.inputs), preview=True).properties)
    assert preview["value"] == secret(UNKNOWN)
    runner = plain(gitlab_plugin.create(RUNNER, {"runnerType": "group_type", "groupId": 1.0}, preview=True).properties)
    assert runner["token"] == secret(UNKNOWN)
    assert len(requests(gitlab_api)) == before


def test_repository_file_commits_the_template(gitlab_plugin: Plugin, gitlab_api: GitLabStandIn) -> None:
    content = "spec:\n  inputs:\n    stage: {default: build}\n---\nbuild:\n  needs: []\n"
    news = {
        "project": PROJECT,
        "branch": "main",
        "filePath": "templates/greedy-build.yml",
        "content": content,
        "encoding": "text",
        "commitMessage": "flywheel: update the greedy build CI/CD component",
        "overwriteOnCreate": True,
    }
    rid, inputs, outputs = deploy(gitlab_plugin, FILE, news)
    assert rid == "acme/platform/ci-templates:main:templates/greedy-build.yml"
    assert outputs["content"] == content and len(outputs["lastCommitId"]) == 40
    project = gitlab_api.state.projects[PROJECT_ID]
    assert project.files["main"]["templates/greedy-build.yml"].content == content.encode()
    assert [c.message for c in project.commits] == ["flywheel: update the greedy build CI/CD component"]
    paths = [(e["method"], e["path"]) for e in requests(gitlab_api)]
    escaped = "/api/v4/projects/acme%2Fplatform%2Fci-templates/repository/files/templates%2Fgreedy-build%2Eyml"
    assert paths[-3:] == [("GET", escaped), ("POST", escaped), ("GET", escaped)]

    assert plain(gitlab_plugin.read(FILE, rid, outputs, inputs).properties) == outputs
    assert second_up(gitlab_plugin, FILE, rid, inputs, outputs).changes == NONE
    moved = gitlab_plugin.diff(FILE, rid, outputs, inputs, {**inputs, "branch": "next"})
    assert list(moved.replaces) == ["branch"]

    changed = {**inputs, "content": content + "deploy:\n  needs: [build]\n"}
    assert list(gitlab_plugin.diff(FILE, rid, outputs, inputs, changed).diffs) == ["content"]
    updated = plain(gitlab_plugin.update(FILE, rid, outputs, changed).properties)
    assert updated["lastCommitId"] != outputs["lastCommitId"]
    put = requests(gitlab_api)[-2]
    assert put["method"] == "PUT" and put["body"]["last_commit_id"] == outputs["lastCommitId"]

    gitlab_plugin.delete(FILE, rid, updated)
    assert "templates/greedy-build.yml" not in project.files["main"]
    assert project.commits[-1].message == "[DELETE]: flywheel: update the greedy build CI/CD component"


def test_overwrite_on_create_updates_an_existing_file(gitlab_plugin: Plugin, gitlab_api: GitLabStandIn) -> None:
    project = gitlab_api.state.projects[PROJECT_ID]
    gitlab_api.state.write_file(
        project, "README.md", {"branch": "main", "content": "old\n", "commit_message": "seed"}, "create"
    )
    news = {"project": PROJECT, "branch": "main", "filePath": "README.md", "content": "new\n", "encoding": "text"}
    _, _, outputs = deploy(gitlab_plugin, FILE, {**news, "commitMessage": "replace", "overwriteOnCreate": True})
    assert outputs["content"] == "new\n"
    assert [e["method"] for e in requests(gitlab_api)][-3:] == ["GET", "PUT", "GET"]
    with pytest.raises(grpc.RpcError) as exists:
        deploy(gitlab_plugin, FILE, {**news, "commitMessage": "again"})
    assert "A file with this name already exists" in exists.value.details()


def test_release_tags_the_branch_and_a_second_up_is_unchanged(gitlab_plugin: Plugin, gitlab_api: GitLabStandIn) -> None:
    # what components/ci_template.py registers: the release is tagged from the template branch
    news = {
        "project": PROJECT,
        "tagName": "1.0.0",
        "ref": "main",
        "name": "greedy-build 1.0.0",
        "description": "Greedy build CI/CD component 1.0.0, released by flywheel.",
    }
    preview = plain(gitlab_plugin.create(RELEASE, news, preview=True).properties)
    assert preview["createdAt"] == UNKNOWN and preview["commit"] == UNKNOWN
    assert [e["path"] for e in requests(gitlab_api)] == ["/api/v4/user"]  # only Configure's auth check

    rid, inputs, outputs = deploy(gitlab_plugin, RELEASE, news)
    assert rid == "acme/platform/ci-templates:1.0.0"  # utils.BuildTwoPartID(project, tag_name)
    project = gitlab_api.state.projects[PROJECT_ID]
    assert project.tags["1.0.0"].commit_id == gitlab_api.state.branch_head(project, "main")
    assert outputs["commit"]["id"] == project.tags["1.0.0"].commit_id and outputs["name"] == news["name"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", outputs["releasedAt"])  # Go's time.RFC3339
    assert outputs["tagPath"] == f"/{PROJECT}/-/tags/1.0.0" and outputs["links"]["self"].endswith("/-/releases/1.0.0")
    post = requests(gitlab_api)[-1]
    assert (post["method"], post["path"], post["status"]) == (
        "POST",
        "/api/v4/projects/acme%2Fplatform%2Fci-templates/releases",
        201,
    )
    assert post["body"] == {
        **{k: news[k] for k in ("name", "description", "ref")},
        "tag_name": "1.0.0",
        "milestones": [],
    }

    read = gitlab_plugin.read(RELEASE, rid, outputs, inputs)
    assert read.id == rid and plain(read.properties) == outputs
    assert requests(gitlab_api)[-1]["path"] == "/api/v4/projects/acme%2Fplatform%2Fci-templates/releases/1%2E0%2E0"
    assert second_up(gitlab_plugin, RELEASE, rid, inputs, outputs).changes == NONE
    assert list(gitlab_plugin.diff(RELEASE, rid, outputs, inputs, {**inputs, "tagName": "1.1.0"}).replaces) == [
        "tagName"
    ]
    assert list(gitlab_plugin.diff(RELEASE, rid, outputs, inputs, {**inputs, "project": "acme/x"}).replaces) == [
        "project"
    ]

    described = {**inputs, "description": "re-described"}
    diff = gitlab_plugin.diff(RELEASE, rid, outputs, inputs, described)
    assert (diff.changes, list(diff.diffs), list(diff.replaces)) == (SOME, ["description"], [])
    updated = plain(gitlab_plugin.update(RELEASE, rid, outputs, described).properties)
    assert updated["description"] == "re-described" and updated["createdAt"] == outputs["createdAt"]
    put = requests(gitlab_api)[-1]
    assert put["method"] == "PUT" and "ref" not in put["body"] and put["body"]["description"] == "re-described"

    gitlab_plugin.delete(RELEASE, rid, updated)
    assert project.releases == {} and "1.0.0" in project.tags  # the tag stays, as in GitLab
    with pytest.raises(grpc.RpcError) as gone:  # the real Read errors on a 404 instead of dropping the resource
        gitlab_plugin.read(RELEASE, rid, updated, described)
    assert "Unable" not in gone.value.details() and "404" in gone.value.details()


def test_release_without_a_ref_for_a_new_tag_fails(gitlab_plugin: Plugin) -> None:
    assert [f.property for f in gitlab_plugin.check(RELEASE, {"project": PROJECT, "tagName": ""}).failures] == [
        "tagName"
    ]
    with pytest.raises(grpc.RpcError) as refused:
        deploy(gitlab_plugin, RELEASE, {"project": PROJECT, "tagName": "2.0.0"})
    assert "422" in refused.value.details() and "Ref is not specified" in refused.value.details()


def test_plugin_stderr_and_record_never_hold_a_secret(gitlab_api: GitLabStandIn) -> None:
    with running("gitlab") as plugin:
        plugin.configure({"baseUrl": gitlab_api.api_url, "token": secret(TOKEN)})
        news = {"group": GROUP, "key": "ATTIC_TOKEN", "value": secret(ATTIC_TOKEN), "masked": True, "hidden": True}
        deploy(plugin, VARIABLE, news)
        runner_id, _, runner = deploy(plugin, RUNNER, {"runnerType": "group_type", "groupId": GROUP_ID})
        plugin.process.terminate()
        _, stderr = plugin.process.communicate(timeout=10)
    record = (gitlab_api.record or Path()).read_text()
    for value in (TOKEN, ATTIC_TOKEN, runner["token"]["value"]):
        assert value not in stderr and value not in record
    assert runner_id
