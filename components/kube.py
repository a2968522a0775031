"""Small Kubernetes conventions shared by every component: labels, secrets, S3 targets, security contexts."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

PART_OF = "flywheel"
# pulumi-kubernetes annotations (provider/pkg/metadata/annotations.go): await a custom resource's condition,
# and replace a Job that is not Complete on the next `pulumi up` (provider.go Diff, `metadata.ReplaceUnready`).
WAIT_FOR_ANNOTATION = "pulumi.com/waitFor"
REPLACE_UNREADY_ANNOTATION = "pulumi.com/replaceUnready"
# A Job's await outlasts its activeDeadlineSeconds, so `pulumi up` sees the Job fail rather than time out first.
AWAIT_MARGIN_SECONDS = 60


def await_timeouts(seconds: float) -> pulumi.CustomTimeouts:
    """How long the provider awaits readiness on create and update (customTimeouts win over its defaults,
    provider/pkg/metadata/overrides.go TimeoutDuration)."""
    value = f"{int(seconds)}s"
    return pulumi.CustomTimeouts(create=value, update=value)


def rerun_when_failed(deadline_seconds: int) -> tuple[dict[str, str], pulumi.ResourceOptions]:
    """Annotations and options for a one-shot Job: awaited past its deadline, replaced on the next up if it
    failed (a failed Job is otherwise only re-awaited, never re-run)."""
    return (
        {REPLACE_UNREADY_ANNOTATION: "true"},
        pulumi.ResourceOptions(custom_timeouts=await_timeouts(deadline_seconds + AWAIT_MARGIN_SECONDS)),
    )


def secret_data(values: Mapping[str, pulumi.Input[str]]) -> dict[str, pulumi.Output[str]]:
    """A Secret's ``data``: each value base64-encoded, and secret.

    Never ``stringData`` for values generated during the update: pulumi-kubernetes folds stringData into data in
    Check only when no value is computed (provider/v4 pkg/provider/provider.go:2572, pkg/clients/unstructured.go
    normalizeSecretStringData), so a plan made while a value is unknown holds ``stringData`` and the apply holds
    ``data``, and ``pulumi up --plan`` refuses the apply ("violates plan").
    """
    return {
        key: pulumi.Output.secret(
            pulumi.Output.from_input(value).apply(lambda text: base64.b64encode(text.encode()).decode())
        )
        for key, value in values.items()
    }


def standard_labels(name: str, component: str) -> dict[str, str]:
    """The labels DESIGN.md fixes for every object this program creates."""
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": "pulumi",
    }


def selector_labels(name: str, component: str) -> dict[str, str]:
    """The stable subset used in selectors (selectors are immutable once created)."""
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/component": component}


def checksum(text: str) -> str:
    """Annotation value that changes whenever a mounted file changes, so pods roll."""
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class SecretKeyRef:
    """One key of a Kubernetes Secret, handed from the component that owns it to its consumers."""

    name: str
    key: str

    def env(self, variable: str) -> k8s.core.v1.EnvVarArgs:
        return k8s.core.v1.EnvVarArgs(
            name=variable,
            value_from=k8s.core.v1.EnvVarSourceArgs(
                secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=self.name, key=self.key)
            ),
        )


@dataclass(frozen=True)
class S3Access:
    """A consumer's S3 identity: a Secret holding AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."""

    secret_name: str

    @property
    def access_key_id(self) -> SecretKeyRef:
        return SecretKeyRef(self.secret_name, "AWS_ACCESS_KEY_ID")

    @property
    def secret_access_key(self) -> SecretKeyRef:
        return SecretKeyRef(self.secret_name, "AWS_SECRET_ACCESS_KEY")

    def env(self) -> list[k8s.core.v1.EnvVarArgs]:
        return [
            self.access_key_id.env("AWS_ACCESS_KEY_ID"),
            self.secret_access_key.env("AWS_SECRET_ACCESS_KEY"),
        ]


@dataclass(frozen=True)
class S3Target:
    """Where one consumer keeps its objects: endpoint, region, bucket, key prefix, and its own identity."""

    endpoint: pulumi.Input[str]
    region: str
    bucket: str
    access: S3Access
    prefix: str = ""


def restricted_pod_security(user: int, *, own_group: bool = True) -> k8s.core.v1.PodSecurityContextArgs:
    """Pod-level half of Pod Security 'restricted': a fixed non-root user and the runtime's seccomp profile.

    ``own_group`` also runs as the user's group and gives mounted volumes to it (fsGroup), for pods that write
    to a volume; without it the image's group stays.
    """
    return k8s.core.v1.PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=user,
        run_as_group=user if own_group else None,
        fs_group=user if own_group else None,
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def restricted_container_security(*, run_as_non_root: bool | None = None) -> k8s.core.v1.SecurityContextArgs:
    """Container-level half of Pod Security 'restricted', with a read-only root filesystem.

    ``run_as_non_root`` repeats the pod's setting on the container (None leaves it to the pod).
    """
    return k8s.core.v1.SecurityContextArgs(
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        run_as_non_root=run_as_non_root,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
    )
