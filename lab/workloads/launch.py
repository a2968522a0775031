"""The container's first process, run by `unshare --mount` inside the pod's network namespace.

    python -m lab.workloads.launch PLAN.json

Builds the root filesystem the runtime would (the host's /usr and /lib read-only in place of the image's
layers, the image's binary at its path, the image's /etc with the Services in /etc/hosts, /dev, /proc, every
volume at its mountPath, read-only where the pod says), makes the root read-only with
`readOnlyRootFilesystem`, chroots, runs the image's own startup logic as the runtime's user, and execs the
program with real setpriv as the identity it ends with.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lab.workloads.images import IMAGES, Identity
from lab.workloads.pod import LaunchPlan

HOST_TREES = ("/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin")


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def _bind(source: str, target: Path, *, read_only: bool) -> None:
    _mount("--rbind" if Path(source).is_dir() else "--bind", source, str(target))
    if read_only:
        _mount("-o", "remount,bind,ro", str(target))


def _inside(root: Path, path: str) -> Path:
    return root / path.lstrip("/")


def _image_layer(plan: LaunchPlan, root: Path) -> Path:
    """The image's own files (its binary, hard-linked) in a layer laid over the host trees."""
    layer = root.parent / "image"
    top = plan.binary_path.strip("/").split("/", 1)[0]
    target = (layer if f"/{top}" in HOST_TREES else root) / plan.binary_path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    os.link(plan.binary, target)
    return layer


def build_root(plan: LaunchPlan) -> Path:
    root = Path(plan.root)
    layer = _image_layer(plan, root)  # before any mount: a hard link cannot cross one
    _mount("--make-rprivate", "/")
    _mount("--bind", str(root), str(root))
    for tree in HOST_TREES:
        host = Path(tree)
        if host.is_symlink():
            _inside(root, tree).symlink_to(host.readlink())
        elif host.is_dir():
            _inside(root, tree).mkdir()
            if _inside(layer, tree).is_dir():  # read-only overlay: the image's files over the host's
                lower = f"lowerdir={_inside(layer, tree)}:{tree}"
                _mount("-t", "overlay", "overlay", "-o", lower, str(_inside(root, tree)))
            else:
                _bind(tree, _inside(root, tree), read_only=True)
    for special in ("/dev", "/proc"):
        _inside(root, special).mkdir()
        _bind(special, _inside(root, special), read_only=False)
    for directory in plan.writable_dirs:  # directories the image ships, writable unless the root is read-only
        _inside(root, directory).mkdir(parents=True, exist_ok=True)
        _inside(root, directory).chmod(0o1777)
    for mount in plan.mounts:
        target = _inside(root, mount.target)
        target.mkdir(parents=True, exist_ok=True)
        _bind(mount.source, target, read_only=mount.read_only)
    if plan.read_only_root:
        _mount("-o", "remount,bind,ro", str(root))
    return root


def setpriv_argv(identity: Identity, plan: LaunchPlan, argv: list[str]) -> list[str]:
    groups = ["--groups", ",".join(map(str, identity.groups))] if identity.groups else ["--clear-groups"]
    command = ["/usr/bin/setpriv", f"--reuid={identity.uid}", f"--regid={identity.gid}", *groups]
    if plan.no_new_privs:
        command.append("--no-new-privs")
    if plan.drop_all_capabilities:
        command += ["--bounding-set=-all", "--inh-caps=-all"]
    return [*command, "--", *argv]


def main(argv: list[str]) -> int:
    plan = LaunchPlan.read(Path(argv[0]))
    root = build_root(plan)
    os.chroot(root)
    try:
        os.chdir(plan.workdir)
    except OSError as err:
        print(f"lab launch: working directory {plan.workdir}: {err.strerror}", file=sys.stderr)
        return 128
    identity, program = plan.identity, list(plan.argv)
    model = IMAGES[plan.image.rsplit(":", 1)[0]]
    if model.startup is not None:
        identity, program = model.startup(identity, program)
    sys.stdout.flush()
    os.execve("/usr/bin/setpriv", setpriv_argv(identity, plan, program), plan.env)  # noqa: S606


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
