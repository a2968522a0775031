"""``python -m lab.providers gitlab|random|tls [engine address...]``: serve one stand-in provider plugin."""

from __future__ import annotations

import sys
from collections.abc import Callable

from lab.providers import gitlab_resources, random_resources, tls_resources
from lab.providers.host import serve
from lab.providers.model import Package

PACKAGES: dict[str, Callable[[], Package]] = {
    "gitlab": gitlab_resources.package,
    "random": random_resources.package,
    "tls": tls_resources.package,
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in PACKAGES:
        print(f"usage: python -m lab.providers {'|'.join(PACKAGES)} [engine address]", file=sys.stderr)
        return 2
    # the remaining arguments (engine address, --logtostderr, -v=N, --tracing ...) are the engine's; unused
    serve(PACKAGES[argv[0]]())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
