"""One e2e lab: the loopback control plane, the stand-ins, the GitLab API stand-in, the chart repository and the
flywheel project with its `dev` stack pointed at them."""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lab.build import path_entries
from lab.e2e.charts import ChartRepository
from lab.e2e.cluster import ControlPlane, wait_for
from lab.e2e.kube import Kube
from lab.e2e.project import ROOT, Project
from lab.e2e.standins import StandInControllers
from lab.gitlab_api import seeded
from lab.gitlab_api.server import GitLabStandIn

# The CloudNativePG CRDs (data the organisation keeps beside the checkout, ../shared/crds; a clone elsewhere points
# FLYWHEEL_SHARED_CRDS at that folder). Without them every Cluster the program creates fails "no matches for kind".
CNPG_CRDS = Path(os.environ.get("FLYWHEEL_SHARED_CRDS") or ROOT.parent / "shared" / "crds")
PROVIDERS_BIN = ROOT / "lab" / "providers" / "bin"
TEMPLATE_PROJECT_ID = 7
# More GitLab groups and template projects, for more deployments in the same lab, each with its own namespace:
# tests/e2e/test_ci_jobs.py and tests/e2e/test_recovery.py.
CI_GROUP = ("acme/ci", 4343)
CI_TEMPLATE_PROJECT = ("acme/ci/templates", 8)
RECOVERY_GROUP = ("acme/recovery", 4444)
RECOVERY_TEMPLATE_PROJECT = ("acme/recovery/templates", 9)


def dev_stack_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
    return values


@dataclass
class Lab:
    workdir: Path
    control_plane: ControlPlane | None = None
    kube: Kube | None = None
    controllers: StandInControllers | None = None
    charts: ChartRepository | None = None
    gitlab: GitLabStandIn | None = None
    project: Project | None = None
    gitlab_token: str = field(default_factory=lambda: "glpat-" + secrets.token_urlsafe(20))
    record: Path | None = None

    def start(self) -> Lab:
        bins = {}
        for entry in path_entries():
            for binary in entry.iterdir():
                bins[binary.name] = binary
        self.control_plane = ControlPlane(self.workdir / "cluster", bins)
        self.kube = self.control_plane.start()
        self._install_crds()
        self.controllers = StandInControllers(self.kube)
        self.controllers.start()
        self.charts = ChartRepository(self.workdir / "charts")
        self.charts.start()
        self.record = self.workdir / "gitlab-requests.jsonl"
        values = dev_stack_values()
        gitlab = values["flywheel:gitlab"]
        self.gitlab = seeded(
            self.gitlab_token,
            {gitlab["groupPath"]: gitlab["groupId"], **dict([CI_GROUP, RECOVERY_GROUP])},
            {gitlab["templateProject"]: TEMPLATE_PROJECT_ID, **dict([CI_TEMPLATE_PROJECT, RECOVERY_TEMPLATE_PROJECT])},
            record=self.record,
        ).start()
        assert self.control_plane.kubeconfig is not None
        self.project = Project(
            self.workdir,
            [*path_entries(), PROVIDERS_BIN],
            env={"KUBECONFIG": str(self.control_plane.kubeconfig)},
        )
        self.project.create()
        return self

    def _install_crds(self) -> None:
        assert self.kube is not None
        applied = 0
        for path in sorted(CNPG_CRDS.rglob("*.yaml")):
            for document in yaml.safe_load_all(path.read_text()):
                if document and document.get("kind") == "CustomResourceDefinition":
                    self.kube.apply(document)
                    applied += 1
        if not applied:
            raise RuntimeError(
                f"no CustomResourceDefinition under {CNPG_CRDS}: the lab needs the CloudNativePG CRDs of "
                "../shared/crds beside the checkout (or FLYWHEEL_SHARED_CRDS pointing at them)"
            )
        wait_for(
            "CloudNativePG CRD established",
            lambda: self.kube is not None and self.kube.list("postgresql.cnpg.io/v1", "Cluster") is not None,
            60,
        )

    def stack_values(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """The dev stack's config pointed at the lab (GitLab stand-in, local chart repository), plus overrides."""
        assert self.gitlab is not None and self.charts is not None
        values = dev_stack_values()
        values["flywheel:gitlab"] = {**values["flywheel:gitlab"], "url": self.gitlab.url}
        values["flywheel:runnerFleet"] = {**values.get("flywheel:runnerFleet", {}), "chartRepository": self.charts.url}
        values["flywheel:database"] = {**values["flywheel:database"], "operatorChartRepository": self.charts.url}
        for key, value in (overrides or {}).items():
            values[key] = value
        return values

    def other_deployment_values(
        self, namespace: str, group: tuple[str, int], template_project: tuple[str, int]
    ) -> dict[str, Any]:
        """The lab's stack values for a deployment beside the dev stack's: its own namespace and GitLab group."""
        values = self.stack_values()
        values["flywheel:namespace"] = namespace
        values["flywheel:gitlab"] = {
            **values["flywheel:gitlab"],
            "groupPath": group[0],
            "groupId": group[1],
            "templateProject": template_project[0],
        }
        # one CloudNativePG operator per cluster: the dev stack installs it
        values["flywheel:database"] = {**values["flywheel:database"], "installOperator": False}
        return values

    def init_stack(
        self, stack: str, overrides: dict[str, Any] | None = None, values_override: dict[str, Any] | None = None
    ) -> None:
        assert self.project is not None
        self.project.pulumi("stack", "init", stack).check()
        self.project.write_stack(stack, values_override or self.stack_values(overrides))
        self.project.pulumi("config", "set", "--stack", stack, "--secret", "gitlab:token", self.gitlab_token).check()

    def stop(self) -> None:
        for stop in (
            self.gitlab.stop if self.gitlab else None,
            self.charts.stop if self.charts else None,
            self.controllers.stop if self.controllers else None,
            self.control_plane.stop if self.control_plane else None,
        ):
            if stop is not None:
                with contextlib.suppress(Exception):
                    stop()
