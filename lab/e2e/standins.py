"""STAND-IN controllers for what a real cluster runs and this lab cannot: each does only the one documented thing
the Pulumi Kubernetes provider waits for, so that a real `pulumi up` can finish its awaits.

- `volume provisioner`: binds each Pending PersistentVolumeClaim to a new PersistentVolume of its size, class and
  access modes (what a dynamic provisioner does; the kube-controller-manager's real PV binder then binds them).
  The volume is a hostPath that nothing mounts: no kubelet runs.
- `ingress controller`: sets `status.loadBalancer.ingress` on every Ingress, which the provider's Ingress await
  requires (pulumi-kubernetes provider/pkg/await/ingress.go checks the status, then the backends' endpoints).
- `CloudNativePG operator`: for each `postgresql.cnpg.io/v1` Cluster, the objects the operator documents creating
  that flywheel consumes: the `<cluster>-app` Secret (keys username, password, dbname, host, port, uri, jdbc-uri,
  pgpass; CloudNativePG docs "Connecting from an application" / "Secrets"), the `<cluster>-rw`, `-ro`, `-r`
  Services, and a status with `phase: Cluster in healthy state`, `readyInstances` and the `Ready` condition,
  some seconds after the Cluster is created (as a bootstrap takes time). No PostgreSQL runs; the password is
  random per lab run.
"""

from __future__ import annotations

import calendar
import secrets
import threading
import time
from typing import Any

from lab.e2e.kube import Kube, KubeError

CNPG_API = "postgresql.cnpg.io/v1"
INGRESS_IP = "127.0.0.1"


class StandInControllers:
    def __init__(self, kube: Kube, interval: float = 0.5, cluster_ready_after: float = 8.0) -> None:
        self.kube = kube
        self.interval = interval
        # a real CloudNativePG cluster takes a while to bootstrap: Ready comes this long after the Cluster exists,
        # so a program that does not wait for it starts Attic's migrations against a database that is not there
        self.cluster_ready_after = cluster_ready_after
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lab-standins", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            for reconcile in (self.provision_volumes, self.publish_ingresses, self.operate_cnpg):
                try:
                    reconcile()
                except (KubeError, OSError) as error:
                    self.errors.append(f"{reconcile.__name__}: {error}")
                    del self.errors[:-50]
            self._stop.wait(self.interval)

    def provision_volumes(self) -> None:
        for claim in self.kube.list("v1", "PersistentVolumeClaim"):
            if claim.get("status", {}).get("phase") != "Pending" or claim["spec"].get("volumeName"):
                continue
            meta = claim["metadata"]
            self.kube.apply(
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolume",
                    "metadata": {
                        "name": f"lab-{meta['namespace']}-{meta['name']}"[:253],
                        "labels": {"flywheel.lab/stand-in": "volume-provisioner"},
                    },
                    "spec": {
                        "capacity": {"storage": claim["spec"]["resources"]["requests"]["storage"]},
                        "accessModes": claim["spec"].get("accessModes", ["ReadWriteOnce"]),
                        "storageClassName": claim["spec"].get("storageClassName") or "",
                        "persistentVolumeReclaimPolicy": "Delete",
                        "hostPath": {"path": f"/var/lib/flywheel-lab/{meta['namespace']}/{meta['name']}"},
                        "claimRef": {
                            "apiVersion": "v1",
                            "kind": "PersistentVolumeClaim",
                            "namespace": meta["namespace"],
                            "name": meta["name"],
                            "uid": meta["uid"],
                        },
                    },
                }
            )

    def publish_ingresses(self) -> None:
        for ingress in self.kube.list("networking.k8s.io/v1", "Ingress"):
            if ingress.get("status", {}).get("loadBalancer", {}).get("ingress"):
                continue
            meta = ingress["metadata"]
            status = {"loadBalancer": {"ingress": [{"ip": INGRESS_IP}]}}
            self.kube.patch_status("networking.k8s.io/v1", "Ingress", meta["name"], meta["namespace"], status)

    def operate_cnpg(self) -> None:
        for cluster in self.kube.list(CNPG_API, "Cluster"):
            meta = cluster["metadata"]
            name, namespace = meta["name"], meta["namespace"]
            owner = {
                "apiVersion": CNPG_API,
                "kind": "Cluster",
                "name": name,
                "uid": meta["uid"],
                "controller": True,
            }
            self._app_secret(cluster, owner)
            for suffix, role in (("rw", "primary"), ("ro", "replica"), ("r", None)):
                selector = {"cnpg.io/cluster": name, **({"cnpg.io/instanceRole": role} if role else {})}
                self.kube.apply(
                    {
                        "apiVersion": "v1",
                        "kind": "Service",
                        "metadata": {"name": f"{name}-{suffix}", "namespace": namespace, "ownerReferences": [owner]},
                        "spec": {"selector": selector, "ports": [{"name": "postgres", "port": 5432}]},
                    }
                )
            if _cluster_ready(cluster) or _age_seconds(cluster) < self.cluster_ready_after:
                continue
            instances = cluster["spec"].get("instances", 1)
            status = {
                "phase": "Cluster in healthy state",
                "instances": instances,
                "readyInstances": instances,
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "ClusterIsReady",
                        "message": "Cluster is Ready (flywheel lab stand-in operator)",
                        "lastTransitionTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    }
                ],
            }
            self.kube.patch_status(CNPG_API, "Cluster", name, namespace, status)

    def _app_secret(self, cluster: dict[str, Any], owner: dict[str, Any]) -> None:
        meta = cluster["metadata"]
        name, namespace = meta["name"], meta["namespace"]
        if self.kube.get("v1", "Secret", f"{name}-app", namespace) is not None:
            return
        initdb = cluster["spec"].get("bootstrap", {}).get("initdb", {})
        database, user = initdb.get("database", "app"), initdb.get("owner", "app")
        password = secrets.token_urlsafe(24)
        host = f"{name}-rw"
        self.kube.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "kubernetes.io/basic-auth",
                "metadata": {"name": f"{name}-app", "namespace": namespace, "ownerReferences": [owner]},
                "stringData": {
                    "username": user,
                    "password": password,
                    "dbname": database,
                    "host": host,
                    "port": "5432",
                    "uri": f"postgresql://{user}:{password}@{host}.{namespace}:5432/{database}",
                    "jdbc-uri": f"jdbc:postgresql://{host}.{namespace}:5432/{database}",
                    "pgpass": f"{host}:5432:{database}:{user}:{password}\n",
                },
            }
        )


def _age_seconds(resource: dict[str, Any]) -> float:
    created = time.strptime(resource["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
    return time.time() - calendar.timegm(created)


def _cluster_ready(cluster: dict[str, Any]) -> bool:
    conditions = cluster.get("status", {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
