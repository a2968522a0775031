"""GitLab REST API stand-in (not GitLab): the endpoints the real gitlab provider and gitlab-runner call."""

from __future__ import annotations

from pathlib import Path

from lab.gitlab_api.server import REDACTION, GitLabStandIn, read_record
from lab.gitlab_api.store import ApiError, GitLabState

__all__ = ["REDACTION", "ApiError", "GitLabStandIn", "GitLabState", "read_record", "seeded"]


def seeded(
    token: str,
    groups: dict[str, int],
    projects: dict[str, int],
    record: Path | None = None,
    port: int = 0,
) -> GitLabStandIn:
    """A stand-in (not started) holding these existing groups and projects (full path -> numeric ID)."""
    stand_in = GitLabStandIn(token, record=record, port=port)
    for path, group_id in groups.items():
        stand_in.state.add_group(path, group_id)
    for path, project_id in projects.items():
        stand_in.state.add_project(path, project_id)
    return stand_in
