"""A node and its pods as network namespaces: a bridge in the node, one veth and address per pod.

Each pod listens on its own address with the ports its spec gives (no port rewriting), reaches other pods by
address, and the kubelet's probes come from the node's namespace, as on a real node. No NetworkPolicy is
enforced here.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

CLONE_NEWNET = 0x40000000
SUBNET = "10.250.0"
NODE_ADDRESS = f"{SUBNET}.254"
T = TypeVar("T")


def _holder() -> subprocess.Popen[bytes]:
    """A process that only keeps a new network namespace alive (returned once it is in it)."""
    own = Path("/proc/self/ns/net").readlink()
    process = subprocess.Popen(["unshare", "--net", "sleep", "infinity"])
    deadline = time.monotonic() + 10
    # until unshare has run, /proc/PID/ns/net is still ours: never configure that one
    while Path(f"/proc/{process.pid}/ns/net").readlink() == own:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("unshare --net did not create a network namespace")
        time.sleep(0.01)
    return process


def _ip(pid: int, *args: str) -> None:
    subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", "ip", *args], check=True)


def _enter(pid: int) -> None:
    """Move the calling thread into ``pid``'s network namespace (sockets it opens stay there)."""
    libc = ctypes.CDLL(None, use_errno=True)
    descriptor = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    try:
        if libc.setns(descriptor, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns into the node's network namespace failed")
    finally:
        os.close(descriptor)


class Node:
    """The node's namespace with bridge `br0`; ``add_pod`` gives a pod its namespace and address."""

    def __init__(self) -> None:
        self._node = _holder()
        self._pods: list[subprocess.Popen[bytes]] = []
        _ip(self._node.pid, "link", "set", "lo", "up")
        _ip(self._node.pid, "link", "add", "br0", "type", "bridge")
        _ip(self._node.pid, "addr", "add", f"{NODE_ADDRESS}/24", "dev", "br0")
        _ip(self._node.pid, "link", "set", "br0", "up")
        self._executor = ThreadPoolExecutor(max_workers=1, initializer=_enter, initargs=(self._node.pid,))

    def add_pod(self) -> tuple[int, str]:
        """(pid whose namespace the pod runs in, the pod's address)."""
        holder = _holder()
        self._pods.append(holder)
        index = len(self._pods)
        address = f"{SUBNET}.{index}"
        host_end = f"veth{index}"
        _ip(self._node.pid, "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", str(holder.pid))
        _ip(self._node.pid, "link", "set", host_end, "master", "br0", "up")
        _ip(holder.pid, "link", "set", "lo", "up")
        _ip(holder.pid, "addr", "add", f"{address}/24", "dev", "eth0")
        _ip(holder.pid, "link", "set", "eth0", "up")
        return holder.pid, address

    def run(self, call: Callable[[], T]) -> T:
        """Run ``call`` in the node's network namespace (probes, and requests a test makes as a client)."""
        return self._executor.submit(call).result()

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        for holder in [*self._pods, self._node]:
            holder.kill()
            holder.wait()
