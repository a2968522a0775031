"""Start a rendered pod's container in the lab, wait for its readiness probe, stop it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.workloads.images import ImageModel, model_for
from lab.workloads.network import Node
from lab.workloads.pod import ClusterData, LaunchPlan, materialise, pod_spec_of
from lab.workloads.probe import check

ROOT = Path(__file__).resolve().parents[2]


class NotReadyError(Exception):
    """The container exited, or its readiness probe never passed in time."""


@dataclass
class Workload:
    """One container of a rendered pod, running in its own namespaces on ``node``."""

    manifest: dict[str, Any]
    node: Node
    sandbox: Path
    secrets: dict[str, dict[str, str]]
    hosts: dict[str, str] = field(default_factory=dict)
    container_name: str | None = None
    address: str = ""
    plan: LaunchPlan | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def container(self) -> dict[str, Any]:
        pod, _claims = pod_spec_of(self.manifest)
        containers: list[dict[str, Any]] = pod["containers"]
        return next(c for c in containers if self.container_name in (None, c["name"]))

    @property
    def image(self) -> ImageModel:
        return model_for(self.container["image"])

    @property
    def log(self) -> Path:
        return self.sandbox / "container.log"

    def start(self) -> Workload:
        pid, self.address = self.node.add_pod()
        data = ClusterData(
            pod_ip=self.address,
            namespace=self.manifest["metadata"].get("namespace", "default"),
            secrets=self.secrets,
            hosts=self.hosts,
        )
        self.plan = materialise(self.manifest, self.image, self.sandbox, data, container_name=self.container_name)
        plan_file = self.sandbox / "plan.json"
        self.plan.write(plan_file)
        launcher = ["unshare", "--mount", sys.executable, "-m", "lab.workloads.launch", str(plan_file)]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                ["nsenter", f"--net=/proc/{pid}/ns/net", *launcher],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                start_new_session=True,
            )
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Seconds until the readiness probe first passed; NotReadyError if the process exits or time runs out."""
        assert self.process is not None, "start() first"
        probe = self.container.get("readinessProbe")
        if probe is None:
            raise NotReadyError("the container has no readinessProbe")
        started = time.monotonic()
        last = ""
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise NotReadyError(f"exited with {self.process.returncode}: {self.output()[-3000:]}")
            ok, last = self.node.run(lambda: check(probe, self.container, self.address))
            if ok:
                return time.monotonic() - started
            time.sleep(0.25)
        raise NotReadyError(f"readiness probe still failing after {timeout:.0f} s ({last}): {self.output()[-3000:]}")

    def wait_exit(self, timeout: float = 60.0) -> int:
        """A Job's container: its exit code once it finishes (NotReadyError if it runs past ``timeout``)."""
        assert self.process is not None, "start() first"
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise NotReadyError(f"still running after {timeout:.0f} s: {self.output()[-3000:]}") from None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
