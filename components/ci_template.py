"""The greedy build CI template: a GitLab CI/CD component committed to the template project.

``render_component`` is pure: it builds the component YAML (a ``spec: inputs:`` document, then the jobs)
from ``CiTemplateConfig`` with PyYAML, embedding the real shell files of ``components/templates/``.
``GreedyCiTemplate`` only wires the result into a ``gitlab.RepositoryFile``.

The jobs it defines:

- ``.greedy-attic`` (hidden): ``before_script`` runs attic-bootstrap.sh (probe Attic, the attic client
  substitution-only, its token in a token-file, ``attic watch-store`` in the background); ``after_script``
  runs attic-teardown.sh (stop the watcher, push what is new in the store since the bootstrap). Neither can
  fail or noticeably slow the job: both always exit 0 and every step is bounded. No Nix setting of the job
  changes: the build's own fetches keep the image's settings.
- ``greedy:nix-build``: extends ``.greedy-attic``, ``needs: []``: substitutes from Attic (bounded pre-pass),
  builds the ``installable`` input, then runs the teardown itself (the same container under every executor).
- ``greedy:bazel-build``: ``needs: []``, checks the cache contract (fails loudly), runs the consumer's
  contract-check command, then the Bazel command.

Every job carries the ``tags`` input (flywheel's pools are tag-only), the ``interruptible`` input and a
``timeout`` whose script share (``RUNNER_SCRIPT_TIMEOUT``) leaves the teardown its ``RUNNER_AFTER_SCRIPT_TIMEOUT``.

Consumers keep their validation and deploy jobs: deploy ``needs:`` the build jobs and the validation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pulumi
import pulumi_gitlab
import yaml

from components.config import SUBSTRATE_MODE, CiTemplateConfig, GitlabConfig

TEMPLATES = Path(__file__).resolve().parent / "templates"
BOOTSTRAP = TEMPLATES / "attic-bootstrap.sh"
TEARDOWN = TEMPLATES / "attic-teardown.sh"
CONTRACT_CHECK = TEMPLATES / "cache-contract-check.sh"

COMPONENT_NAME = "greedy-build"
COMPONENT_FILE = f"templates/{COMPONENT_NAME}.yml"
"""Path of the component inside the template project (GitLab looks for components under templates/)."""
README_FILE = "README.md"
"""The template project's README at its root (the CI/CD catalog shows it; it needs one to publish)."""
RENDERED_PREFIX = "ci-template"

DEFAULT_STAGE = "build"
DEFAULT_INSTALLABLE = ".#default"
DEFAULT_BAZEL_COMMAND = "just bazel-build-cached"
DEFAULT_CONTRACT_CHECK_COMMAND = "just cache-contract-strict"
STATE_DIR = "${CI_BUILDS_DIR}/.greedy-attic-${CI_JOB_ID}"
"""Per-job state shared by before_script, script and after_script (same container, new shells); the
builds directory belongs to the runner's job user, unlike a guessable name in a shared /tmp."""

NIX_BUILD = TEMPLATES / "nix-build.sh"
HEREDOC_MARKERS = {
    BOOTSTRAP: "GREEDY_ATTIC_BOOTSTRAP",
    TEARDOWN: "GREEDY_ATTIC_TEARDOWN",
    NIX_BUILD: "GREEDY_NIX_BUILD",
    CONTRACT_CHECK: "GREEDY_CACHE_CONTRACT",
}
# Slack on top of the teardown's own bounds (probe kill-after, path-info, process start-up).
AFTER_SCRIPT_SLACK_SECONDS = 30
# Part of the job timeout spent before the script (image pull, clone) and after it (artifacts, cleanup).
JOB_OVERHEAD_SECONDS = 120


def teardown_bound_seconds(config: CiTemplateConfig) -> int:
    """Worst case of attic-teardown.sh: probe + watcher stop (1 s) + push, each with its kill grace."""
    probe = config.connect_timeout_seconds + config.stalled_download_timeout_seconds + 2
    return probe + 1 + config.push_timeout_seconds + 2


def after_script_timeout_seconds(config: CiTemplateConfig) -> int:
    return teardown_bound_seconds(config) + AFTER_SCRIPT_SLACK_SECONDS


def script_timeout_seconds(config: CiTemplateConfig) -> int:
    """GitLab gives after_script time only if script + after_script timeouts fit in the job's timeout."""
    return config.job_timeout_minutes * 60 - after_script_timeout_seconds(config) - JOB_OVERHEAD_SECONDS


def _embedded(script: Path, interpreter: str = "bash", on_failure: str | None = None, prefix: str = "") -> str:
    """A script item running ``script`` in its own ``interpreter`` (the job shell's options and variables stay).

    The text travels in a quoted heredoc inside ``$(...)``: nothing in it is expanded, and its stdin is
    /dev/null, so no command in it can swallow the rest of the script or the job's input.
    """
    marker = HEREDOC_MARKERS[script]
    text = script.read_text()
    if any(line.strip() == marker for line in text.splitlines()):
        raise ValueError(f"{script.name} contains its own heredoc marker {marker}")
    if "$[[" in text:
        raise ValueError(f"{script.name} contains '$[[', which GitLab would read as an input reference")
    command = f"{prefix}{interpreter} -c \"$(cat <<'{marker}'\n{text.rstrip()}\n{marker}\n)\" {script.stem} </dev/null"
    return f"{command} || {on_failure}\n" if on_failure else f"{command}\n"


def _inputs(config: CiTemplateConfig) -> dict[str, Any]:
    return {
        "stage": {"default": DEFAULT_STAGE, "description": "Stage of the build jobs (they start at once: needs: [])."},
        "tags": {
            "type": "array",
            "default": list(config.tags),
            "description": "Runner tags of every job (flywheel's runners take tagged jobs only).",
        },
        "interruptible": {
            "type": "boolean",
            "default": True,
            "description": "Let GitLab cancel the build jobs when a newer pipeline starts on the same ref.",
        },
        "installable": {
            "default": DEFAULT_INSTALLABLE,
            "description": "Nix installable greedy:nix-build builds, e.g. .#default or .#checks.x86_64-linux.all.",
        },
        "attic-client-ref": {
            "default": config.attic_client_ref,
            "description": "First flake ref the attic client is substituted from (--max-jobs 0, never built).",
        },
        "fallback-client-ref": {
            "default": config.fallback_client_ref,
            "description": "Second ref, tried with the Attic cache as an extra substituter.",
        },
        "nix-build": {"type": "boolean", "default": True, "description": "Run greedy:nix-build."},
        "bazel-build": {"type": "boolean", "default": True, "description": "Run greedy:bazel-build."},
        "bazel-command": {
            "default": DEFAULT_BAZEL_COMMAND,
            "description": "The Bazel build command (runs after the cache contract check).",
        },
        "contract-check-command": {
            "default": DEFAULT_CONTRACT_CHECK_COMMAND,
            "description": "The repository's own strict cache-contract check, run before the Bazel command.",
        },
    }


def _enabled_by(input_name: str) -> list[dict[str, str]]:
    # A boolean input interpolates as true/false; compared as strings so the rule parses either way.
    return [{"if": f'"$[[ inputs.{input_name} ]]" == "true"'}]


def _jobs(config: CiTemplateConfig) -> dict[str, Any]:
    job_settings = {
        "tags": "$[[ inputs.tags ]]",
        "interruptible": "$[[ inputs.interruptible ]]",
        "timeout": f"{config.job_timeout_minutes} minutes",
    }
    attic_variables = {
        "GREEDY_ATTIC_STATE_DIR": STATE_DIR,
        "GREEDY_ATTIC_CLIENT_REF": "$[[ inputs.attic-client-ref ]]",
        "GREEDY_ATTIC_FALLBACK_CLIENT_REF": "$[[ inputs.fallback-client-ref ]]",
        "GREEDY_ATTIC_CONNECT_TIMEOUT": str(config.connect_timeout_seconds),
        "GREEDY_ATTIC_STALLED_DOWNLOAD_TIMEOUT": str(config.stalled_download_timeout_seconds),
        "GREEDY_ATTIC_CLIENT_FETCH_TIMEOUT": str(config.client_fetch_timeout_seconds),
        "GREEDY_ATTIC_SUBSTITUTE_TIMEOUT": str(config.substitute_timeout_seconds),
        "GREEDY_ATTIC_PUSH_TIMEOUT": str(config.push_timeout_seconds),
        # GitLab runs after_script only if both fit in the job timeout; the teardown reads its share at run time.
        "RUNNER_SCRIPT_TIMEOUT": f"{script_timeout_seconds(config)}s",
        "RUNNER_AFTER_SCRIPT_TIMEOUT": f"{after_script_timeout_seconds(config)}s",
    }
    greedy_attic = {
        **job_settings,
        "variables": attic_variables,
        "before_script": [
            _embedded(
                BOOTSTRAP,
                on_failure='echo "greedy-attic: the bootstrap failed unexpectedly; the build goes on unpublished"',
            ),
        ],
        "after_script": [_embedded(TEARDOWN, on_failure='echo "greedy-attic: the teardown failed unexpectedly"')],
    }
    nix_build = {
        "extends": ".greedy-attic",
        "stage": "$[[ inputs.stage ]]",
        "needs": [],
        "rules": _enabled_by("nix-build"),
        "variables": {"GREEDY_NIX_INSTALLABLE": "$[[ inputs.installable ]]"},
        # The build's exit code is kept while the teardown publishes in the build's own container.
        "script": [
            "greedy_build_exit=0",
            _embedded(NIX_BUILD, on_failure="greedy_build_exit=$?"),
            _embedded(
                TEARDOWN,
                prefix="GREEDY_ATTIC_PHASE=script ",
                on_failure='echo "greedy-attic: the teardown failed unexpectedly"',
            ),
            'exit "$greedy_build_exit"',
        ],
    }
    bazel_build = {
        **job_settings,
        "stage": "$[[ inputs.stage ]]",
        "needs": [],
        "rules": _enabled_by("bazel-build"),
        "variables": {"GREEDY_EXPECTED_SUBSTRATE_MODE": SUBSTRATE_MODE},
        "script": [
            _embedded(CONTRACT_CHECK, interpreter="sh"),
            "$[[ inputs.contract-check-command ]]",
            "$[[ inputs.bazel-command ]]",
        ],
    }
    return {".greedy-attic": greedy_attic, "greedy:nix-build": nix_build, "greedy:bazel-build": bazel_build}


class _ComponentDumper(yaml.SafeDumper):
    """Multi-line strings (the embedded shell) as literal blocks, so the file reads like the .sh files."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_ComponentDumper.add_representer(str, _str_representer)


def render_component(config: CiTemplateConfig) -> str:
    """The component file: the ``spec:`` header document, ``---``, then the jobs."""
    documents = [{"spec": {"inputs": _inputs(config)}}, _jobs(config)]
    header = (
        "# Greedy build CI/CD component, rendered by flywheel (components/ci_template.py). Do not edit here:\n"
        "# change the stack's flywheel:ciTemplate config or the shell in components/templates/.\n"
    )
    return header + yaml.dump_all(documents, Dumper=_ComponentDumper, sort_keys=False, width=120, explicit_start=False)


DEFAULT_PORTS = {"https": 443, "http": 80}


def ci_server_fqdn(gitlab_config: GitlabConfig) -> str:
    """What GitLab sets as ``CI_SERVER_FQDN``: host, a non-default port and the relative URL root.

    GitLab config/settings.rb ``build_ci_server_fqdn`` joins ``gitlab.host``, ``:port`` unless standard, and
    ``gitlab.relative_url_root``: ``https://example.com/gitlab`` -> ``example.com/gitlab``.
    """
    url = urlsplit(gitlab_config.url)
    host = (url.hostname or "").lower()
    if url.port is not None and url.port != DEFAULT_PORTS.get(url.scheme):
        host = f"{host}:{url.port}"
    return "/".join(part for part in (host, url.path.strip("/")) if part)


def component_path(gitlab_config: GitlabConfig) -> str:
    """The component's address below ``CI_SERVER_FQDN``: the template project and the component's name."""
    return f"{gitlab_config.template_project}/{COMPONENT_NAME}"


def component_reference(gitlab_config: GitlabConfig) -> str:
    """What consumers write after ``include: - component:`` (without ``@<version>``).

    GitLab matches the address against its component FQDN (``ci_server_fqdn``), then the project path.
    """
    return f"{ci_server_fqdn(gitlab_config)}/{component_path(gitlab_config)}"


def component_version(gitlab_config: GitlabConfig, config: CiTemplateConfig) -> str:
    """What consumers pin after ``@``: the release, or the branch when releases are off."""
    return config.release_version or gitlab_config.template_ref


def render_readme(gitlab_config: GitlabConfig, config: CiTemplateConfig) -> str:
    """The template project's README: how to include the component, and its inputs with their defaults."""
    inputs = _inputs(config)
    version = component_version(gitlab_config, config)
    address = component_path(gitlab_config)
    rows = [
        f"| `{name}` | {spec.get('type', 'string')} | `{json.dumps(spec['default'])}` | {spec['description']} |"
        for name, spec in inputs.items()
    ]
    usage = yaml.safe_dump(
        {
            "include": [
                {
                    "component": f"$CI_SERVER_FQDN/{address}@{version}",
                    "inputs": {"installable": ".#default", "tags": list(config.tags)},
                }
            ],
            "deploy": {"needs": [{"job": "greedy:nix-build", "optional": True}, "validate"]},
        },
        sort_keys=False,
    )
    lines = [
        f"# {COMPONENT_NAME}",
        "",
        "The greedy build CI/CD component, rendered and released by flywheel: build jobs start at once",
        "(`needs: []`) and push every store path they build to the Attic cache while they run.",
        "Do not edit this project by hand: the next `pulumi up` overwrites it.",
        "",
        "```yaml",
        usage.rstrip(),
        "```",
        "",
        f"Pin a release (`@{version}`); `~latest` works once the project is published in the CI/CD catalog.",
        "A deploy job that `needs:` a build job a toggle can switch off marks that need `optional: true`.",
        "Works on the Kubernetes and shell executors; on Docker's, after_script runs in a new container, so only",
        "the push at the end of the script publishes (a cancelled or timed-out job keeps what the watcher pushed).",
        "",
        "| input | type | default | description |",
        "| --- | --- | --- | --- |",
        *rows,
        "",
    ]
    return "\n".join(lines)


def rendered_files(config: CiTemplateConfig, gitlab_config: GitlabConfig | None = None) -> dict[str, str]:
    """Files to show in the offline render: the component, its README, and the shell it embeds (for review)."""
    readme = {f"{RENDERED_PREFIX}/{README_FILE}": render_readme(gitlab_config, config)} if gitlab_config else {}
    return {
        f"{RENDERED_PREFIX}/{COMPONENT_FILE}": render_component(config),
        **readme,
        f"{RENDERED_PREFIX}/{BOOTSTRAP.name}": BOOTSTRAP.read_text(),
        f"{RENDERED_PREFIX}/{TEARDOWN.name}": TEARDOWN.read_text(),
        f"{RENDERED_PREFIX}/{CONTRACT_CHECK.name}": CONTRACT_CHECK.read_text(),
        f"{RENDERED_PREFIX}/{NIX_BUILD.name}": NIX_BUILD.read_text(),
    }


class GreedyCiTemplate(pulumi.ComponentResource):
    """Commits the greedy build component to ``gitlab.templateProject`` on ``gitlab.templateRef``."""

    def __init__(
        self,
        name: str,
        gitlab: GitlabConfig,
        template: CiTemplateConfig,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("flywheel:index:GreedyCiTemplate", name, None, opts)
        self.rendered_files: dict[str, pulumi.Input[str]] = dict(rendered_files(template, gitlab))
        files = []
        for resource_name, file_path in ((COMPONENT_NAME, COMPONENT_FILE), ("readme", README_FILE)):
            files.append(
                pulumi_gitlab.RepositoryFile(
                    f"{name}-{resource_name}",
                    project=gitlab.template_project,
                    branch=gitlab.template_ref,
                    file_path=file_path,
                    content=self.rendered_files[f"{RENDERED_PREFIX}/{file_path}"],
                    encoding="text",
                    commit_message=f"flywheel: update {file_path} of the greedy build CI/CD component",
                    overwrite_on_create=True,
                    opts=pulumi.ResourceOptions(parent=self),
                )
            )
        self.component_file, self.readme_file = files
        self.release: pulumi_gitlab.Release | None = None
        if template.release_version:
            # Tagged from the branch once both files are committed; kept in GitLab when the version moves on,
            # so consumers pinned to an older release keep it.
            self.release = pulumi_gitlab.Release(
                f"{name}-release",
                project=gitlab.template_project,
                tag_name=template.release_version,
                ref=gitlab.template_ref,
                name=f"{COMPONENT_NAME} {template.release_version}",
                description=f"Greedy build CI/CD component {template.release_version}, released by flywheel.",
                opts=pulumi.ResourceOptions(parent=self, depends_on=files, retain_on_delete=True),
            )
        self.component = f"{component_reference(gitlab)}@{component_version(gitlab, template)}"
        """The ``include: component:`` value consumers use."""
        self.register_outputs({"component": self.component, "file_path": COMPONENT_FILE})
