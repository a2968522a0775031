"""Run the GitLab API stand-in: ``python -m lab.gitlab_api --port N --record FILE``.

Existing groups and projects: ``--group acme/platform=4242 --project acme/platform/ci-templates=7``.

Prints ``listening on http://127.0.0.1:PORT`` once the socket is bound, then serves until killed.
The token clients must present comes from ``--token`` or ``$GITLAB_TOKEN`` (never printed).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

from lab.gitlab_api import seeded


def _path_and_id(text: str) -> tuple[str, int]:
    path, sep, number = text.rpartition("=")
    if not sep or not path or not number.isdigit():
        raise argparse.ArgumentTypeError(f"'{text}' is not FULL/PATH=ID (e.g. acme/platform=4242)")
    return path, int(number)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.gitlab_api", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--record", type=Path, help="append every request to this JSONL file")
    parser.add_argument("--token", default=os.environ.get("GITLAB_TOKEN"), help="accepted token ($GITLAB_TOKEN)")
    parser.add_argument("--group", type=_path_and_id, action="append", default=[], help="existing group PATH=ID")
    parser.add_argument("--project", type=_path_and_id, action="append", default=[], help="existing project PATH=ID")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("--token (or $GITLAB_TOKEN) is required: the stand-in checks every request's token")
    stand_in = seeded(args.token, dict(args.group), dict(args.project), record=args.record, port=args.port)
    print(f"listening on {stand_in.url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        stand_in.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
