"""A loopback Kubernetes control plane of real binaries: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, and kwok for fake nodes (pods become Ready and Job pods complete; no container runs).

Every process listens on 127.0.0.1 only. The addresses kwok gives pods and the service range are entries in API
objects: nothing here sends a packet to them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.build import module_dir
from lab.e2e import pki
from lab.e2e.kube import Kube, KubeError

KWOK_MODULE = ("sigs.k8s.io/kwok", "v0.8.0")
# kwok reads its stages from Stage objects (`--enable-crds=Stage`, pkg/kwok/cmd/root.go:149-163): each resource's
# lifecycle is a filter over the Stage objects of the moment (pkg/kwok/controllers/stages_manager.go:87), so a
# Stage a test adds while the lab runs (a fault) applies from the next pod event, until the test removes it.
KWOK_STAGE_CRD = "kustomize/crd/bases/kwok.x-k8s.io_stages.yaml"
STAGE_API = "kwok.x-k8s.io/v1alpha1"
# kwok's own "fast" stages (the kustomize/stage tree of the module): nodes Ready, pods Ready, Job pods Succeeded
KWOK_STAGES = (
    "kustomize/stage/node/fast/node-initialize.yaml",
    # with --node-lease-duration-seconds, as kwok's own docs pair them (kustomize/stage/node/heartbeat-with-lease)
    "kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "kustomize/stage/pod/fast/pod-ready.yaml",
    "kustomize/stage/pod/fast/pod-complete.yaml",
    "kustomize/stage/pod/fast/pod-delete.yaml",
)
SERVICE_RANGE = "10.96.0.0/16"
NODE_NAMES = ("kwok-node-0", "kwok-node-1")
# kwok renews each node's Lease every quarter of this (pkg/kwok/controllers/controller.go:250). Without a Lease
# (kwok's default when no configuration file sets one), only node status patches about every 55 s told the node
# lifecycle controller the nodes live: past its 50 s grace period it marked them not-Ready and every pod on them
# NotReady for good (kwok's pod-ready stage only readies Pending pods), which failed awaits at random.
NODE_LEASE_SECONDS = 40
# what kube-controller-manager logs when every node missed its heartbeat (node_lifecycle_controller.go)
NODES_LOST = "all Nodes are not-Ready"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(what: str, check: Callable[[], bool], timeout: float, interval: float = 0.25) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, KubeError):
            pass
        time.sleep(interval)
    raise TimeoutError(f"lab: {what} not ready after {timeout:.0f} s")


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class ControlPlane:
    workdir: Path
    bins: dict[str, Path]
    processes: list[Process] = field(default_factory=list)
    kube: Kube | None = None
    kubeconfig: Path | None = None

    def _start(self, name: str, args: list[str]) -> Process:
        log = self.workdir / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            popen = subprocess.Popen(
                [str(self.bins[name]), *args], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def _check_alive(self) -> None:
        for process in self.processes:
            if not process.alive():
                raise RuntimeError(f"lab: {process.name} exited ({process.popen.returncode}):\n{process.tail()}")

    def start(self) -> Kube:
        certs = pki.generate(self.workdir / "pki")
        etcd_port, etcd_peer, api_port = free_port(), free_port(), free_port()
        self._start(
            "etcd",
            [
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
                f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
                f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-cluster=default=http://127.0.0.1:{etcd_peer}",
                "--unsafe-no-fsync",  # a throwaway store: the lab trades durability for speed
            ],
        )
        server = f"https://127.0.0.1:{api_port}"
        self._start(
            "kube-apiserver",
            [
                f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={api_port}",
                f"--tls-cert-file={certs['apiserver.crt']}",
                f"--tls-private-key-file={certs['apiserver.key']}",
                f"--client-ca-file={certs['ca.crt']}",
                f"--service-account-key-file={certs['sa.pub']}",
                f"--service-account-signing-key-file={certs['sa.key']}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-cluster-ip-range={SERVICE_RANGE}",
                "--authorization-mode=RBAC",
                "--allow-privileged=true",
                "--enable-priority-and-fairness=false",
            ],
        )
        self.kube = Kube(server, certs["ca.crt"], certs["admin.crt"], certs["admin.key"])
        wait_for("kube-apiserver", lambda: self._alive_then(lambda: self._readyz()), 120)
        self.kubeconfig = self._write_kubeconfig(server, certs)
        kubeconfig = f"--kubeconfig={self.kubeconfig}"
        self._start(
            "kube-controller-manager",
            [
                kubeconfig,
                "--secure-port=0",
                "--leader-elect=false",
                "--use-service-account-credentials=false",
                f"--service-account-private-key-file={certs['sa.key']}",
                f"--root-ca-file={certs['ca.crt']}",
                "--controllers=*",
                "--concurrent-deployment-syncs=10",
                "--concurrent-replicaset-syncs=10",
                "--concurrent-job-syncs=10",
            ],
        )
        self._start("kube-scheduler", [kubeconfig, "--secure-port=0", "--leader-elect=false"])
        kwok_root = module_dir(*KWOK_MODULE)
        self._install_stages(kwok_root)
        self._start(
            "kwok",
            [
                kubeconfig,
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--cidr=10.244.0.1/24",
                "--node-ip=10.244.0.1",
                f"--server-address=127.0.0.1:{free_port()}",
                "--enable-crds=Stage",
                f"--node-lease-duration-seconds={NODE_LEASE_SECONDS}",
            ],
        )
        for name in NODE_NAMES:
            self.kube.apply(fake_node(name))
        wait_for("kwok nodes Ready", lambda: self._alive_then(self._nodes_ready), 120)
        wait_for("default ServiceAccount", lambda: self._alive_then(self._default_sa), 120)
        return self.kube

    def _install_stages(self, kwok_root: Path) -> None:
        import yaml

        assert self.kube is not None
        self.kube.apply(yaml.safe_load((kwok_root / KWOK_STAGE_CRD).read_text()))
        wait_for("kwok Stage CRD established", lambda: self.kube is not None and self._stages_served(), 60)
        for stage in KWOK_STAGES:
            self.kube.apply(yaml.safe_load((kwok_root / stage).read_text()))

    def _stages_served(self) -> bool:
        assert self.kube is not None
        self.kube.request("GET", Kube.path(STAGE_API, "Stage"))
        return True

    def add_stage(self, stage: dict[str, Any]) -> None:
        """A kwok Stage while the lab runs (e.g. one that fails some pods); remove it with remove_stage."""
        assert self.kube is not None
        self.kube.create({"apiVersion": STAGE_API, "kind": "Stage", **stage})

    def remove_stage(self, name: str) -> None:
        assert self.kube is not None
        self.kube.delete(STAGE_API, "Stage", name)

    def nodes_went_not_ready(self) -> bool:
        """Whether kube-controller-manager ever saw every node miss its heartbeat (pods then stay NotReady)."""
        log = self.workdir / "logs" / "kube-controller-manager.log"
        return NODES_LOST in log.read_text(errors="replace")

    def _alive_then(self, check: Callable[[], bool]) -> bool:
        self._check_alive()
        return check()

    def _readyz(self) -> bool:
        assert self.kube is not None
        self.kube.request("GET", "/readyz")
        return True

    def _nodes_ready(self) -> bool:
        assert self.kube is not None
        nodes = self.kube.list("v1", "Node")
        ready = [
            n
            for n in nodes
            if any(c["type"] == "Ready" and c["status"] == "True" for c in n.get("status", {}).get("conditions", []))
        ]
        return len(ready) == len(NODE_NAMES)

    def _default_sa(self) -> bool:
        assert self.kube is not None
        return self.kube.get("v1", "ServiceAccount", "default", "default") is not None

    def _write_kubeconfig(self, server: str, certs: dict[str, Path]) -> Path:
        import yaml

        path = self.workdir / "kubeconfig"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "lab", "cluster": {"server": server, "certificate-authority": str(certs["ca.crt"])}}],
            "users": [
                {
                    "name": "admin",
                    "user": {"client-certificate": str(certs["admin.crt"]), "client-key": str(certs["admin.key"])},
                }
            ],
            "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "admin"}}],
            "current-context": "lab",
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.alive():
                os.killpg(process.popen.pid, signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.popen.pid, signal.SIGKILL)
                process.popen.wait(timeout=5)
        self.processes.clear()


def fake_node(name: str) -> dict[str, Any]:
    """A node kwok manages (its annotation selector), big enough for every pool's requests."""
    resources = {"cpu": "64", "memory": "256Gi", "pods": "250", "ephemeral-storage": "1Ti"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "spec": {},
        "status": {"allocatable": resources, "capacity": resources},
    }
