"""A small Kubernetes REST client (stdlib only) for the lab's stand-in controllers and the e2e assertions.

It speaks to the API server with the admin client certificate; paths are built from apiVersion and kind with
the plural names this project's objects use.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# kind -> plural, for the kinds the program and the lab create (the API server's discovery would say the same)
PLURALS = {
    "Namespace": "namespaces",
    "Node": "nodes",
    "Pod": "pods",
    "Secret": "secrets",
    "ConfigMap": "configmaps",
    "Service": "services",
    "ServiceAccount": "serviceaccounts",
    "PersistentVolume": "persistentvolumes",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "Endpoints": "endpoints",
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "ReplicaSet": "replicasets",
    "Job": "jobs",
    "CronJob": "cronjobs",
    "Ingress": "ingresses",
    "NetworkPolicy": "networkpolicies",
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "ClusterRole": "clusterroles",
    "ClusterRoleBinding": "clusterrolebindings",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "ResourceQuota": "resourcequotas",
    "LimitRange": "limitranges",
    "CustomResourceDefinition": "customresourcedefinitions",
    "Cluster": "clusters",
    "Lease": "leases",
    "Stage": "stages",
}
CLUSTER_SCOPED = {
    "Namespace",
    "Node",
    "PersistentVolume",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "Stage",
}


class KubeError(RuntimeError):
    def __init__(self, status: int, method: str, path: str, body: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {body[:500]}")
        self.status = status


@dataclass
class Kube:
    server: str
    ca: Path
    cert: Path
    key: Path

    def __post_init__(self) -> None:
        self._context = ssl.create_default_context(cafile=str(self.ca))
        self._context.load_cert_chain(str(self.cert), str(self.key))

    def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
        data = None if body is None else json.dumps(body).encode()
        if not self.server.startswith("https://127.0.0.1:"):
            raise ValueError(f"lab: the API server must be on loopback, not {self.server}")
        req = urllib.request.Request(self.server + path, data=data, method=method)  # noqa: S310 - https, checked above
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, context=self._context, timeout=30) as response:  # noqa: S310
                text = response.read().decode()
        except urllib.error.HTTPError as error:
            raise KubeError(error.code, method, path, error.read().decode(errors="replace")) from None
        if not text:
            return None
        return json.loads(text) if text.lstrip().startswith(("{", "[")) else text

    @staticmethod
    def path(api_version: str, kind: str, namespace: str | None = None, name: str | None = None) -> str:
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        if namespace and kind not in CLUSTER_SCOPED:
            base += f"/namespaces/{namespace}"
        base += f"/{PLURALS[kind]}"
        return f"{base}/{name}" if name else base

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = self.request("GET", self.path(api_version, kind, namespace, name))
        except KubeError as error:
            if error.status == 404:
                return None
            raise
        return result

    def list(self, api_version: str, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        try:
            items: list[dict[str, Any]] = self.request("GET", self.path(api_version, kind, namespace))["items"]
        except KubeError as error:
            if error.status == 404:  # the kind's API is not served (yet)
                return []
            raise
        return items

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        metadata = manifest.get("metadata", {})
        path = self.path(manifest["apiVersion"], manifest["kind"], metadata.get("namespace"))
        result: dict[str, Any] = self.request("POST", path, manifest)
        return result

    def apply(self, manifest: dict[str, Any]) -> None:
        """Create, or leave alone when it already exists."""
        try:
            self.create(manifest)
        except KubeError as error:
            if error.status != 409:
                raise

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> None:
        """Delete, or nothing when it is already gone."""
        try:
            self.request("DELETE", self.path(api_version, kind, namespace, name))
        except KubeError as error:
            if error.status != 404:
                raise

    def patch_status(self, api_version: str, kind: str, name: str, namespace: str | None, status: Any) -> None:
        path = self.path(api_version, kind, namespace, name) + "/status"
        self.request("PATCH", path, {"status": status}, "application/merge-patch+json")
