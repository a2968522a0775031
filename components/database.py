"""PostgreSQL for Attic: a CloudNativePG `Cluster` (operator optionally installed here) or an external DSN.

Either way the output is one Secret key holding the connection URI, which Attic reads as
`ATTIC_SERVER_DATABASE_URL`.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.config import DatabaseConfig
from components.config_types import parse_humantime
from components.kube import WAIT_FOR_ANNOTATION, SecretKeyRef, await_timeouts, secret_data, standard_labels

COMPONENT = "database"
CNPG_API_VERSION = "postgresql.cnpg.io/v1"
CNPG_CHART = "cloudnative-pg"
CNPG_OPERATOR_NAMESPACE = "cnpg-system"
DATABASE_NAME = "attic"
DATABASE_OWNER = "attic"
# CloudNativePG's readiness condition (api/v1/cluster_types.go: ConditionClusterReady = "Ready"); awaited so
# nothing that needs the database (or the <cluster>-app Secret the operator writes) starts before it.
CLUSTER_READY = "condition=Ready"


def cnpg_cluster_spec(config: DatabaseConfig) -> dict[str, Any]:
    """The `Cluster` spec: instances, pinned image, storage, and an `attic` database owned by `attic`."""
    storage: dict[str, Any] = {"size": config.size}
    if config.storage_class:
        storage["storageClass"] = config.storage_class
    return {
        "instances": config.instances,
        "imageName": config.postgres_image,
        "primaryUpdateStrategy": "unsupervised",
        "storage": storage,
        "bootstrap": {"initdb": {"database": DATABASE_NAME, "owner": DATABASE_OWNER}},
        # CNPG writes <cluster>-app with keys username, password, host, port, dbname, uri, ...
        "enableSuperuserAccess": False,
    }


def cnpg_app_secret(cluster_name: str) -> SecretKeyRef:
    """Where CloudNativePG puts the application user's connection URI."""
    return SecretKeyRef(f"{cluster_name}-app", "uri")


class AtticDatabase(pulumi.ComponentResource):
    """Attic's PostgreSQL; `url` is the Secret key holding the connection URI."""

    url: SecretKeyRef
    ready: list[pulumi.Resource]
    """Resources consumers should depend on (the Cluster, or the DSN Secret)."""

    def __init__(
        self, name: str, config: DatabaseConfig, namespace: str, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("flywheel:index:AtticDatabase", name, None, opts)
        self._name = name
        self._namespace = namespace
        if config.backend == "cnpg":
            self._cnpg(config)
        else:
            self._external(config)
        self.register_outputs({"urlSecret": self.url.name, "urlKey": self.url.key})

    def _metadata(self, name: str, annotations: dict[str, str] | None = None) -> k8s.meta.v1.ObjectMetaArgs:
        return k8s.meta.v1.ObjectMetaArgs(
            name=name, namespace=self._namespace, labels=standard_labels(self._name, COMPONENT), annotations=annotations
        )

    def _cnpg(self, config: DatabaseConfig) -> None:
        depends_on: list[pulumi.Resource] = []
        if config.install_operator:
            depends_on.append(
                k8s.helm.v3.Release(
                    f"{self._name}-cnpg-operator",
                    name="cnpg",
                    chart=CNPG_CHART,
                    version=config.operator_chart_version,
                    repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=config.operator_chart_repository),
                    namespace=CNPG_OPERATOR_NAMESPACE,
                    create_namespace=True,
                    atomic=True,
                    values={"crds": {"create": True}},
                    opts=pulumi.ResourceOptions(parent=self),
                )
            )
        cluster = k8s.apiextensions.CustomResource(
            f"{self._name}-cluster",
            api_version=CNPG_API_VERSION,
            kind="Cluster",
            metadata=self._metadata(self._name, {WAIT_FOR_ANNOTATION: CLUSTER_READY}),
            spec=cnpg_cluster_spec(config),
            # the database is data: `pulumi destroy` must not drop it by accident
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=depends_on,
                retain_on_delete=True,
                custom_timeouts=await_timeouts(parse_humantime(config.ready_timeout)),
            ),
        )
        self.ready = [cluster]
        self.url = cnpg_app_secret(self._name)

    def _external(self, config: DatabaseConfig) -> None:
        assert config.url is not None  # config.py refuses backend external without it
        secret_name = f"{self._name}-url"
        secret = k8s.core.v1.Secret(
            f"{self._name}-url",
            metadata=self._metadata(secret_name),
            type="Opaque",
            data=secret_data({"uri": config.url.get_secret_value()}),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.ready = [secret]
        self.url = SecretKeyRef(secret_name, "uri")
