"""A container's probe as the kubelet runs it (pkg/probe): tcpSocket connects; httpGet succeeds on
200-399 with the probe's headers (and `Host` from them when set); grpc calls grpc.health.v1.Health/Check
and wants SERVING. Named ports resolve through the container's `ports`. Default timeout 1 s."""

from __future__ import annotations

import http.client
import socket
from typing import Any

HEALTH_CHECK = "/grpc.health.v1.Health/Check"
SERVING = b"\x08\x01"  # HealthCheckResponse{status: SERVING}


def resolve_port(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for declared in container.get("ports", []):
        if declared.get("name") == port:
            return int(declared["containerPort"])
    raise ValueError(f"probe port {port!r} is not a named port of container {container['name']!r}")


def check(probe: dict[str, Any], container: dict[str, Any], address: str) -> tuple[bool, str]:
    """Run ``probe`` once against ``address``; (succeeded, what happened)."""
    timeout = float(probe.get("timeoutSeconds", 1))
    try:
        if "tcpSocket" in probe:
            port = resolve_port(container, probe["tcpSocket"]["port"])
            with socket.create_connection((address, port), timeout=timeout):
                return True, f"tcp {address}:{port} open"
        if "httpGet" in probe:
            action = probe["httpGet"]
            port = resolve_port(container, action["port"])
            headers = {h["name"]: h["value"] for h in action.get("httpHeaders", [])}
            connection = http.client.HTTPConnection(address, port, timeout=timeout)
            try:
                connection.request("GET", action.get("path", "/"), headers=headers)
                status = connection.getresponse().status
            finally:
                connection.close()
            return 200 <= status < 400, f"GET {action.get('path', '/')} -> {status}"
        if "grpc" in probe:
            import grpc

            port = int(probe["grpc"]["port"])
            try:
                with grpc.insecure_channel(f"{address}:{port}") as channel:
                    call = channel.unary_unary(HEALTH_CHECK, request_serializer=None, response_deserializer=None)
                    answer = call(b"", timeout=timeout)
            except grpc.RpcError as err:
                return False, f"grpc health: {err}"
            return answer == SERVING, f"grpc health {answer!r}"
    except (OSError, http.client.HTTPException) as err:
        return False, f"{type(err).__name__}: {err}"
    raise NotImplementedError(f"probe kind {sorted(probe)} is not modelled")
