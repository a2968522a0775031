"""AtticDatabase (components/database.py): the CNPG Cluster and operator release, the external DSN Secret,
and the config errors users see."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from components.config import DatabaseConfig
from components.database import cnpg_app_secret, cnpg_cluster_spec
from components.kube import SecretKeyRef
from tests.conftest import decoded_data, dev_value, run_unredacted
from tests.k8s_schema import schema_errors
from tests.test_config import problems_for, with_change
from tools.render import REDACTED, RenderResult, kubernetes_objects

DSN = "postgresql://attic:s3cr3t-db-password@db.example.com:5432/attic?sslmode=require"
CLUSTER_TYPE = "kubernetes:postgresql.cnpg.io/v1:Cluster"
RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"


def resources_named(result: RenderResult, component: str) -> dict[str, dict[str, Any]]:
    """The AtticDatabase component named ``component`` and its children, by name."""
    own = f"flywheel:index:AtticDatabase::{component}"
    return {r["name"]: r for r in result.resources if r["urn"].endswith(own) or r["parent"].endswith(own)}


def test_cnpg_cluster_has_the_configured_shape(dev_render: RenderResult) -> None:
    cluster = resources_named(dev_render, "attic-db")["attic-db-cluster"]
    assert cluster["type"] == CLUSTER_TYPE
    manifest = cluster["inputs"]
    assert manifest["apiVersion"] == "postgresql.cnpg.io/v1" and manifest["kind"] == "Cluster"
    assert manifest["metadata"]["name"] == "attic-db"
    assert manifest["metadata"]["namespace"] == "flywheel"
    assert manifest["metadata"]["labels"]["app.kubernetes.io/part-of"] == "flywheel"
    assert manifest["metadata"]["labels"]["app.kubernetes.io/component"] == "database"
    spec = manifest["spec"]
    assert spec["instances"] == dev_value("database")["instances"] == 2
    assert spec["imageName"] == "ghcr.io/cloudnative-pg/postgresql:16.6"
    assert spec["storage"] == {"size": "10Gi"}
    assert spec["bootstrap"] == {"initdb": {"database": "attic", "owner": "attic"}}
    assert spec["enableSuperuserAccess"] is False
    assert cluster["options"]["retainOnDelete"] is True


def test_cnpg_spec_checks_against_the_operator_field_names() -> None:
    """Field names of postgresql.cnpg.io/v1 Cluster (no bundled schema): only these, typed as the CRD wants."""
    spec = cnpg_cluster_spec(DatabaseConfig(instances=3, size="50Gi", storage_class="fast-ssd"))
    allowed = {"instances", "imageName", "primaryUpdateStrategy", "storage", "bootstrap", "enableSuperuserAccess"}
    assert set(spec) <= allowed
    assert isinstance(spec["instances"], int) and spec["instances"] == 3
    assert spec["storage"] == {"size": "50Gi", "storageClass": "fast-ssd"}
    assert spec["primaryUpdateStrategy"] in {"unsupervised", "supervised"}


def test_operator_release_is_pinned_and_installed_before_the_cluster(dev_render: RenderResult) -> None:
    named = resources_named(dev_render, "attic-db")
    release = named["attic-db-cnpg-operator"]
    assert release["type"] == RELEASE_TYPE
    inputs = release["inputs"]
    assert inputs["chart"] == "cloudnative-pg"
    assert inputs["version"] == "0.23.0"
    assert inputs["repositoryOpts"] == {"repo": "https://cloudnative-pg.github.io/charts"}
    assert inputs["namespace"] == "cnpg-system" and inputs["createNamespace"] is True
    assert release["urn"] in named["attic-db-cluster"]["options"]["dependsOn"]


def test_operator_is_assumed_present_when_install_operator_is_false(
    render: Callable[[dict[str, Any]], RenderResult],
) -> None:
    result = render({"database": {**dev_value("database"), "installOperator": False}})
    named = resources_named(result, "attic-db")
    assert "attic-db-cnpg-operator" not in named
    assert not [r for r in result.resources if r["type"] == RELEASE_TYPE and "cnpg" in r["name"]]
    assert named["attic-db-cluster"]["options"]["dependsOn"] == []


def database_url_sources(result: RenderResult) -> dict[str, dict[str, str]]:
    """Where each workload's atticd container reads ATTIC_SERVER_DATABASE_URL from, by kind/name."""
    sources = {}
    for manifest in kubernetes_objects(result.resources):
        spec = manifest.get("spec") or {}
        template = spec.get("template") or spec.get("jobTemplate", {}).get("spec", {}).get("template")
        for container in (template or {}).get("spec", {}).get("containers", []):
            for env in container.get("env", []):
                if env["name"] == "ATTIC_SERVER_DATABASE_URL":
                    sources[f"{manifest['kind']}/{manifest['metadata']['name']}"] = env["valueFrom"]["secretKeyRef"]
    return sources


def test_every_atticd_reads_the_url_from_the_operator_app_secret(dev_render: RenderResult) -> None:
    assert cnpg_app_secret("attic-db") == SecretKeyRef("attic-db-app", "uri")
    sources = database_url_sources(dev_render)
    assert {name.split("/")[0] for name in sources} == {"Deployment", "Job", "CronJob"}  # api-server, migrations, GC
    assert list(sources.values()) == [{"name": "attic-db-app", "key": "uri"}] * len(sources)


@pytest.fixture(scope="module")
def external_render() -> RenderResult:
    from tests.conftest import render_stack, stack_with

    return render_stack(stack_with({"database": {"backend": "external", "url": DSN}}))


def test_external_dsn_is_kept_in_a_secret_this_program_owns(external_render: RenderResult) -> None:
    named = resources_named(external_render, "attic-db")
    assert sorted(named) == ["attic-db", "attic-db-url"]  # the component and its Secret; no Cluster, no operator
    secret = named["attic-db-url"]["inputs"]
    assert secret["kind"] == "Secret"
    assert secret["metadata"]["name"] == "attic-db-url" and secret["metadata"]["namespace"] == "flywheel"
    assert secret["data"] == {"uri": REDACTED}
    manifests = [m for m in kubernetes_objects(external_render.resources) if m["metadata"]["name"] == "attic-db-url"]
    assert len(manifests) == 1
    assert schema_errors(manifests) == []


def test_every_atticd_reads_the_url_from_the_owned_secret(external_render: RenderResult) -> None:
    sources = database_url_sources(external_render)
    assert len(sources) == 3  # api-server, migrations, GC
    assert list(sources.values()) == [{"name": "attic-db-url", "key": "uri"}] * 3


def test_external_dsn_never_appears_in_resources_files_or_outputs(external_render: RenderResult) -> None:
    rendered = json.dumps(external_render.resources) + json.dumps(external_render.outputs)
    rendered += "".join(str(text) for text in external_render.files.values())
    assert "s3cr3t-db-password" not in rendered
    assert DSN not in rendered


def test_external_url_reference_is_the_owned_secret() -> None:
    from tests.conftest import stack_with

    inputs, outputs = run_unredacted(stack_with({"database": {"backend": "external", "url": DSN}}))
    assert decoded_data(inputs["attic-db-url"]) == {"uri": DSN}
    assert outputs["database_url_secret"] == "attic-db-url"
    assert outputs["database_backend"] == "external"


# --- bad input -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("database", "expected"),
    [
        (
            {"backend": "external"},
            "flywheel:database.url: backend 'external' needs 'url' (got null; expected a postgres:// DSN set as "
            "secret config)",
        ),
        (
            {"backend": "external", "url": "mysql://attic:pw@db/attic"},
            "flywheel:database.url: 'url' is not a PostgreSQL DSN (got '[secret]'; expected a postgres:// or "
            "postgresql:// DSN)",
        ),
        (
            {"backend": "cnpg", "url": DSN},
            "flywheel:database.url: 'url' belongs to backend 'external' (got '[secret]'; expected no url with "
            "backend 'cnpg')",
        ),
        (
            {"backend": "mysql"},
            "flywheel:database.backend: not an allowed value (got 'mysql'; expected one of 'cnpg' or 'external')",
        ),
        (
            {"instances": 0},
            "flywheel:database.instances: out of range (got 0; expected a number >= 1)",
        ),
    ],
    ids=["external-without-url", "not-postgres", "url-with-cnpg", "unknown-backend", "zero-instances"],
)
def test_bad_database_config_is_refused_with_the_key_path(database: dict[str, Any], expected: str) -> None:
    problems = problems_for(with_change("database", database))
    assert problems == [expected]
    assert not any("pw@" in p or "s3cr3t" in p for p in problems)
