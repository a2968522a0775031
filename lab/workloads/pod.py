"""A rendered pod spec materialised the way the kubelet and the container runtime would prepare it.

Volumes (kubernetes pkg/volume):
- secret / configMap: an emptyDir-backed directory (mode 0777) whose files carry `items[].mode` or
  `defaultMode` (API default 0644), owned by root; the real plugin writes them through AtomicWriter as
  symlinks into `..data/`, here they are plain files with the same mode.
- emptyDir: a directory with mode 0777 (pkg/volume/emptydir/empty_dir.go `perm os.FileMode = 0777`).
- persistentVolumeClaim (and a StatefulSet's volumeClaimTemplates): a fresh filesystem's root directory,
  root:root 0755 (what mkfs.ext4 creates; provisioners differ).
- With the pod's `fsGroup`, pkg/volume/volume_linux.go SetVolumeOwnership walks the volume: group := fsGroup,
  mode |= 0660 (0440 for read-only volume types: secret, configMap), directories also setgid and 0110.
Process identity (CRI): runAsUser / runAsGroup from the container or pod security context, else the image's
USER; supplementary groups: the image's groups for that user, fsGroup, supplementalGroups. runAsNonRoot with
uid 0 refuses to start, as the kubelet does. `$(VAR)` in env values, command and args expands from the
container's env (Kubernetes expansion; `$$` escapes).
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lab.workloads.images import Identity, ImageModel

DEFAULT_MODE = 0o644
RW_MASK, RO_MASK, EXEC_MASK = 0o660, 0o440, 0o110
EMPTY_DIR_MODE = 0o777
FRESH_FILESYSTEM_MODE = 0o755
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class PodStartError(Exception):
    """The kubelet would not start this container (e.g. CreateContainerConfigError)."""


@dataclass
class Mount:
    source: str
    target: str
    read_only: bool


@dataclass
class LaunchPlan:
    """What lab.workloads.launch needs inside the pod's mount namespace."""

    root: str
    mounts: list[Mount]
    binary: str
    binary_path: str
    read_only_root: bool
    writable_dirs: list[str]
    workdir: str
    identity: Identity
    argv: list[str]
    env: dict[str, str]
    no_new_privs: bool
    drop_all_capabilities: bool
    image: str
    log: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def read(cls, path: Path) -> LaunchPlan:
        data = json.loads(path.read_text())
        data["mounts"] = [Mount(**m) for m in data["mounts"]]
        ident = data["identity"]
        data["identity"] = Identity(ident["uid"], ident["gid"], tuple(ident["groups"]))
        return cls(**data)


@dataclass(frozen=True)
class ClusterData:
    """What the API server would hold for the pod: Secret and ConfigMap contents, the pod's address."""

    pod_ip: str
    namespace: str
    secrets: dict[str, dict[str, str]]
    config_maps: dict[str, dict[str, str]] = field(default_factory=dict)
    hosts: dict[str, str] = field(default_factory=dict)  # service DNS name -> address


def _expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion: known variables are replaced, `$$` is a literal `$`."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", replace, text)


def _container(pod: dict[str, Any], name: str | None) -> dict[str, Any]:
    containers: list[dict[str, Any]] = pod["containers"]
    if name is None:
        return containers[0]
    return next(c for c in containers if c["name"] == name)


def pod_spec_of(manifest: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(pod spec, volume claim templates) of a Deployment, StatefulSet, Job, CronJob or Pod manifest."""
    spec = manifest["spec"]
    if manifest["kind"] == "Pod":
        return spec, []
    if manifest["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"], list(spec.get("volumeClaimTemplates", []))


def _own(path: Path, fs_group: int | None, read_only_type: bool) -> None:
    """SetVolumeOwnership for one path (nothing without fsGroup)."""
    if fs_group is None:
        return
    info = path.lstat()
    os.lchown(path, info.st_uid, fs_group)
    mask = RO_MASK if read_only_type else RW_MASK
    if stat.S_ISDIR(info.st_mode):
        mask |= stat.S_ISGID | EXEC_MASK
    path.chmod(stat.S_IMODE(info.st_mode) | mask)


def _key_files(volume: dict[str, Any], data: dict[str, str]) -> list[tuple[str, str, int]]:
    source = volume.get("secret") or volume.get("configMap") or {}
    default = int(source.get("defaultMode", DEFAULT_MODE))
    items = source.get("items")
    if not items:
        return [(key, value, default) for key, value in sorted(data.items())]
    return [(item["path"], data[item["key"]], int(item.get("mode", default))) for item in items]


def _materialise_volume(volume: dict[str, Any], where: Path, data: ClusterData, fs_group: int | None) -> None:
    where.mkdir(parents=True)
    os.chown(where, 0, 0)
    if "secret" in volume or "configMap" in volume:
        kind, ref = (
            ("secret", volume["secret"]["secretName"])
            if "secret" in volume
            else (
                "configMap",
                volume["configMap"]["name"],
            )
        )
        store = data.secrets if kind == "secret" else data.config_maps
        if ref not in store:
            raise PodStartError(f"volume {volume['name']!r}: {kind} {ref!r} not found")
        where.chmod(EMPTY_DIR_MODE)
        for relative, value, mode in _key_files(volume, store[ref]):
            target = where / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(value)
            os.chown(target, 0, 0)
            target.chmod(mode)
        for path in [where, *where.rglob("*")]:
            _own(path, fs_group, read_only_type=True)
    elif "emptyDir" in volume:
        where.chmod(EMPTY_DIR_MODE)
        _own(where, fs_group, read_only_type=False)
    elif "persistentVolumeClaim" in volume or "claimTemplate" in volume:
        where.chmod(FRESH_FILESYSTEM_MODE)
        _own(where, fs_group, read_only_type=False)
    else:
        raise NotImplementedError(f"volume {volume['name']!r}: type {sorted(volume)} is not modelled")


def _env(container: dict[str, Any], data: ClusterData, pod_name: str) -> dict[str, str]:
    env: dict[str, str] = {}
    fields = {"status.podIP": data.pod_ip, "metadata.namespace": data.namespace, "metadata.name": pod_name}
    for entry in container.get("env", []):
        name = entry["name"]
        if "value" in entry:
            env[name] = _expand(str(entry["value"]), env)
            continue
        source = entry["valueFrom"]
        if "fieldRef" in source:
            env[name] = fields[source["fieldRef"]["fieldPath"]]
        elif "secretKeyRef" in source or "configMapKeyRef" in source:
            ref = source.get("secretKeyRef") or source["configMapKeyRef"]
            store = data.secrets if "secretKeyRef" in source else data.config_maps
            try:
                env[name] = store[ref["name"]][ref["key"]]
            except KeyError:
                raise PodStartError(f"env {name}: key {ref['key']!r} of {ref['name']!r} not found") from None
        else:
            raise NotImplementedError(f"env {name}: {sorted(source)} is not modelled")
    return env


def _identity(pod: dict[str, Any], container: dict[str, Any], image: ImageModel) -> Identity:
    pod_security = pod.get("securityContext") or {}
    security = container.get("securityContext") or {}

    def setting(key: str) -> Any:
        return security.get(key, pod_security.get(key))

    uid = setting("runAsUser")
    uid = image.user.uid if uid is None else int(uid)
    gid = setting("runAsGroup")
    if gid is None:
        gid = image.user.gid if uid == image.user.uid else next(iter(image.groups_of(uid)), 0)
    if setting("runAsNonRoot") and uid == 0:
        raise PodStartError("container has runAsNonRoot and image will run as root")
    groups = [*image.groups_of(uid)]
    if pod_security.get("fsGroup") is not None:
        groups.append(int(pod_security["fsGroup"]))
    groups += [int(g) for g in pod_security.get("supplementalGroups", [])]
    return Identity(uid, int(gid), tuple(dict.fromkeys(groups)))


def _etc(image: ImageModel, where: Path, hosts: dict[str, str], hostname: str) -> None:
    where.mkdir(parents=True)
    passwd = "".join(f"{name}:x:{uid}:{gid}::{home}:/sbin/nologin\n" for name, uid, gid, home in image.passwd)
    (where / "passwd").write_text(passwd)
    (where / "group").write_text("".join(f"{name}:x:{gid}:\n" for name, gid in image.group))
    lines = ["127.0.0.1 localhost", *(f"{address} {name}" for name, address in sorted(hosts.items()))]
    (where / "hosts").write_text("\n".join(lines) + "\n")
    (where / "hostname").write_text(hostname + "\n")
    (where / "nsswitch.conf").write_text("hosts: files dns\n")
    (where / "resolv.conf").write_text("")  # cluster DNS is not modelled: /etc/hosts names the Services
    for path in [where, *where.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def materialise(
    manifest: dict[str, Any],
    image: ImageModel,
    sandbox: Path,
    data: ClusterData,
    *,
    container_name: str | None = None,
) -> LaunchPlan:
    """Prepare ``manifest``'s pod under ``sandbox`` and return the plan that starts its container."""
    pod, claims = pod_spec_of(manifest)
    container = _container(pod, container_name)
    pod_name = manifest["metadata"]["name"]
    fs_group = (pod.get("securityContext") or {}).get("fsGroup")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    volumes.update({c["metadata"]["name"]: {"name": c["metadata"]["name"], "claimTemplate": c} for c in claims})
    mounts = []
    for mount in container.get("volumeMounts", []):
        volume = volumes.get(mount["name"])
        if volume is None:
            raise PodStartError(f"volumeMount {mount['name']!r} names no volume of the pod")
        where = sandbox / "volumes" / mount["name"]
        if not where.exists():
            _materialise_volume(volume, where, data, None if fs_group is None else int(fs_group))
        source = where / mount["subPath"] if mount.get("subPath") else where
        mounts.append(Mount(str(source), mount["mountPath"], bool(mount.get("readOnly", False))))
    env = {"PATH": DEFAULT_PATH, "HOSTNAME": pod_name}
    env.update(_env(container, data, pod_name))
    identity = _identity(pod, container, image)
    env.setdefault("HOME", image.home_of(identity.uid))
    if "command" in container:
        argv = [*container["command"], *container.get("args", [])]
    else:
        argv = [*image.entrypoint, *container.get("args", image.cmd)]
    argv = [_expand(str(arg), env) for arg in argv]
    security = container.get("securityContext") or {}
    root = sandbox / "rootfs"
    root.mkdir(parents=True)
    root.chmod(0o755)
    _etc(image, root / "etc", data.hosts, pod_name)  # the image's /etc, plus what the runtime writes
    return LaunchPlan(
        root=str(root),
        mounts=mounts,
        binary=str(image.binary),
        binary_path=image.binary_path,
        read_only_root=bool(security.get("readOnlyRootFilesystem", False)),
        writable_dirs=list(image.writable_dirs),
        workdir=container.get("workingDir", image.workdir),
        identity=identity,
        argv=argv,
        env=env,
        no_new_privs=security.get("allowPrivilegeEscalation") is False,
        drop_all_capabilities="ALL" in ((security.get("capabilities") or {}).get("drop") or []),
        image=image.reference,
    )
