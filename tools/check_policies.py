"""Run the flywheel policy pack over a resources file (render output, hand-edited, or exported).

    python -m tools.check_policies build/dev/resources.json [--config policy-config.json] [--json]

Prints every violation; exit 0 when none is mandatory, 1 on a mandatory violation, 2 when the file
(or the policy config) cannot be read. The config has the shape of `pulumi preview --policy-pack-config`:
{"all": "advisory", "<policy>": "disabled" | {"enforcementLevel": "mandatory", ...}}.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_MANDATORY, EXIT_UNREADABLE = 0, 1, 2


class UnreadableInputError(Exception):
    """The resources file or the policy config is not usable; the message says why."""


def load_resources(path: Path) -> list[dict[str, Any]]:
    """Records ``{urn, type, name?, inputs?, options?, ...}``; ``UnreadableInputError`` when the shape is wrong."""
    try:
        document = json.loads(path.read_text())
    except OSError as err:
        raise UnreadableInputError(f"{path}: cannot read ({err.strerror or err})") from None
    except UnicodeDecodeError:
        raise UnreadableInputError(f"{path}: not a text file") from None
    except json.JSONDecodeError as err:
        raise UnreadableInputError(
            f"{path}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})"
        ) from None
    if isinstance(document, dict) and isinstance(document.get("resources"), list):
        document = document["resources"]  # also accept {"resources": [...]}
    if not isinstance(document, list):
        raise UnreadableInputError(f"{path}: expected a JSON list of resources (got {type(document).__name__})")
    for index, record in enumerate(document):
        where = f"{path}: resource #{index}"
        if not isinstance(record, dict):
            raise UnreadableInputError(f"{where}: expected an object (got {type(record).__name__})")
        for key in ("urn", "type"):
            if not isinstance(record.get(key), str) or not record[key]:
                raise UnreadableInputError(f"{where}: '{key}' must be a non-empty string")
        for key in ("inputs", "options"):
            if key in record and not isinstance(record[key], dict):
                raise UnreadableInputError(f"{where} ({record['urn']}): '{key}' must be an object")
    return document


def load_config(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UnreadableInputError(f"{path}: cannot read the policy config ({err})") from None
    if not isinstance(config, dict):
        raise UnreadableInputError(f"{path}: the policy config must be a JSON object")
    return config


def format_violation(violation: dict[str, Any]) -> str:
    return (
        f"{violation['enforcementLevel'].upper()} {violation['policyName']}: "
        f"{violation['urn'] or '(stack)'}\n    {violation['message']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.check_policies", description=__doc__.splitlines()[0])
    parser.add_argument("resources", type=Path, help="resources.json written by tools.render (or in that shape)")
    parser.add_argument("--config", type=Path, help="policy config JSON (as for --policy-pack-config)")
    parser.add_argument("--json", action="store_true", help="print the violations as JSON")
    args = parser.parse_args(argv)

    from policies.evaluate import PolicyConfigError, evaluate_resources

    try:
        resources = load_resources(args.resources)
        violations = evaluate_resources(resources, load_config(args.config))
    except (UnreadableInputError, PolicyConfigError) as err:
        print(f"check_policies: {err}", file=sys.stderr)
        return EXIT_UNREADABLE
    mandatory = [v for v in violations if v["enforcementLevel"] == "mandatory"]
    if args.json:
        print(json.dumps({"violations": violations}, indent=2, sort_keys=True))
    else:
        for violation in violations:
            print(format_violation(violation))
        print(
            f"{len(resources)} resources checked: {len(violations)} violation(s), {len(mandatory)} mandatory"
            + (" -- the stack would be refused" if mandatory else "")
        )
    return EXIT_MANDATORY if mandatory else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
