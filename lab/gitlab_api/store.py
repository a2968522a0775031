"""In-memory state of the GitLab REST API stand-in: groups, projects, runners, group variables, files, releases.

Stand-in, not GitLab. It holds only what the endpoints in ``server.py`` need, with the field names
and defaults of GitLab's REST API documentation (each method cites its page). Errors are
``ApiError(status, message)``; the JSON body shapes follow the docs' examples, not GitLab's exact
wording for every validation.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# docs.gitlab.com/ee/ci/variables/#mask-a-cicd-variable: one line, >= 8 characters, Base64 alphabet plus @ : . ~
MASKABLE = re.compile(r"[A-Za-z0-9+/=_\-@:.~]{8,}")
VARIABLE_KEY = re.compile(r"[A-Za-z0-9_]{1,255}")
RUNNER_TYPES = ("instance_type", "group_type", "project_type")
ACCESS_LEVELS = ("not_protected", "ref_protected")
VARIABLE_TYPES = ("env_var", "file")
# docs.gitlab.com/ee/security/tokens/#token-prefixes: runner authentication tokens start with glrt-
RUNNER_AUTH_PREFIX = "glrt-"


class ApiError(Exception):
    def __init__(self, status: int, message: Any) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message


@dataclass
class Group:
    id: int
    full_path: str

    def as_json(self, web_base: str) -> dict[str, Any]:
        # docs.gitlab.com/ee/api/groups.html#get-a-single-group (the fields a client needs to find it)
        name = self.full_path.rsplit("/", 1)[-1]
        return {
            "id": self.id,
            "name": name,
            "path": name,
            "full_path": self.full_path,
            "full_name": self.full_path.replace("/", " / "),
            "web_url": f"{web_base}/groups/{self.full_path}",
            "visibility": "private",
        }


@dataclass
class RepositoryFile:
    content: bytes
    last_commit_id: str
    execute_filemode: bool = False


@dataclass
class Commit:
    id: str
    branch: str
    message: str
    action: str
    file_path: str
    author_name: str | None
    author_email: str | None


@dataclass
class Tag:
    name: str
    commit_id: str
    message: str | None = None


@dataclass
class Release:
    tag_name: str
    name: str
    description: str
    created_at: datetime
    released_at: datetime
    milestones: list[str] = field(default_factory=list)


@dataclass
class Project:
    id: int
    path_with_namespace: str
    default_branch: str = "main"
    branches: set[str] = field(default_factory=set)
    # branch -> file path -> file
    files: dict[str, dict[str, RepositoryFile]] = field(default_factory=dict)
    commits: list[Commit] = field(default_factory=list)
    tags: dict[str, Tag] = field(default_factory=dict)
    releases: dict[str, Release] = field(default_factory=dict)

    def as_json(self, web_base: str) -> dict[str, Any]:
        # docs.gitlab.com/ee/api/projects.html#get-a-single-project
        name = self.path_with_namespace.rsplit("/", 1)[-1]
        return {
            "id": self.id,
            "name": name,
            "path": name,
            "path_with_namespace": self.path_with_namespace,
            "default_branch": self.default_branch,
            "web_url": f"{web_base}/{self.path_with_namespace}",
        }


@dataclass
class Runner:
    id: int
    token: str
    runner_type: str
    group_id: int | None
    project_id: int | None
    description: str = ""
    paused: bool = False
    locked: bool = False
    run_untagged: bool = True
    tag_list: list[str] = field(default_factory=list)
    access_level: str = "not_protected"
    maximum_timeout: int | None = None
    maintenance_note: str | None = None


@dataclass
class GroupVariable:
    key: str
    value: str
    variable_type: str = "env_var"
    protected: bool = False
    masked: bool = False
    hidden: bool = False
    raw: bool = False
    environment_scope: str = "*"
    description: str | None = None

    def as_json(self) -> dict[str, Any]:
        # docs.gitlab.com/ee/api/group_level_variables.html: a hidden variable's value is returned as null
        return {
            "key": self.key,
            "value": None if self.hidden else self.value,
            "variable_type": self.variable_type,
            "protected": self.protected,
            "masked": self.masked,
            "hidden": self.hidden,
            "raw": self.raw,
            "environment_scope": self.environment_scope,
            "description": self.description,
        }


def _flag(params: dict[str, Any], name: str, default: bool) -> bool:
    value = params.get(name, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise ApiError(400, {"error": f"{name} is invalid"})


def _choice(params: dict[str, Any], name: str, allowed: tuple[str, ...], default: str | None) -> str | None:
    value = params.get(name, default)
    if value is not None and value not in allowed:
        raise ApiError(400, {"error": f"{name} does not have a valid value"})
    return value


def _integer(params: dict[str, Any], name: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    # Grape's Integer coercion takes 42 or "42"; a float such as 42.5 is refused
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ApiError(400, {"error": f"{name} is invalid"})
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, {"error": f"{name} is invalid"}) from None


def _tags(params: dict[str, Any]) -> list[str] | None:
    value = params.get("tag_list")
    if value is None:
        return None
    # docs.gitlab.com/ee/api/users.html#create-a-runner-linked-to-a-user: tag_list is an array of strings
    if isinstance(value, str):
        return [tag.strip() for tag in value.split(",") if tag.strip()]
    return [str(tag) for tag in value]


class GitLabState:
    """The objects of one GitLab instance the stand-in serves."""

    def __init__(self, token: str, user: str = "flywheel-bot") -> None:
        self.token = token
        self.user = {"id": 1, "username": user, "name": user, "state": "active"}
        self.groups: dict[int, Group] = {}
        self.projects: dict[int, Project] = {}
        self.runners: dict[int, Runner] = {}
        # group id -> (key, environment_scope) -> variable
        self.variables: dict[int, dict[tuple[str, str], GroupVariable]] = {}
        self._runner_ids = itertools.count(1)
        self._commit_serial = itertools.count(1)

    # --- seeding (not an API: the instance's existing groups and projects) ---

    def add_group(self, full_path: str, group_id: int) -> Group:
        group = Group(group_id, full_path)
        self.groups[group_id] = group
        self.variables.setdefault(group_id, {})
        return group

    def add_project(self, path_with_namespace: str, project_id: int, default_branch: str = "main") -> Project:
        project = Project(project_id, path_with_namespace, default_branch, {default_branch})
        project.files[default_branch] = {}
        self.projects[project_id] = project
        return project

    # --- lookups: ":id" is a numeric ID or a URL-encoded path (docs.gitlab.com/ee/api/rest/#namespaced-paths) ---

    def group(self, ref: str) -> Group:
        for group in self.groups.values():
            if ref in (str(group.id), group.full_path):
                return group
        raise ApiError(404, "404 Group Not Found")

    def project(self, ref: str) -> Project:
        for project in self.projects.values():
            if ref in (str(project.id), project.path_with_namespace):
                return project
        raise ApiError(404, "404 Project Not Found")

    # --- runners: docs.gitlab.com/ee/api/users.html#create-a-runner-linked-to-a-user, api/runners.html ---

    def create_user_runner(self, params: dict[str, Any]) -> Runner:
        runner_type = _choice(params, "runner_type", RUNNER_TYPES, None)
        if runner_type is None:
            raise ApiError(400, {"error": "runner_type is missing"})
        group_id = _integer(params, "group_id")
        project_id = _integer(params, "project_id")
        if runner_type == "group_type":
            if group_id is None:
                raise ApiError(400, {"message": {"runner": ["group_id is required for group_type runners"]}})
            self.group(str(group_id))
        if runner_type == "project_type":
            if project_id is None:
                raise ApiError(400, {"message": {"runner": ["project_id is required for project_type runners"]}})
            self.project(str(project_id))
        maximum_timeout = _integer(params, "maximum_timeout")
        if maximum_timeout is not None and maximum_timeout < 600:
            raise ApiError(400, {"message": {"maximum_timeout": ["needs to be at least 10 minutes"]}})
        runner = Runner(
            id=next(self._runner_ids),
            token=RUNNER_AUTH_PREFIX + secrets.token_urlsafe(15),
            runner_type=runner_type,
            group_id=group_id if runner_type == "group_type" else None,
            project_id=project_id if runner_type == "project_type" else None,
            description=str(params.get("description") or ""),
            paused=_flag(params, "paused", False),
            locked=_flag(params, "locked", False),
            run_untagged=_flag(params, "run_untagged", True),
            tag_list=_tags(params) or [],
            access_level=_choice(params, "access_level", ACCESS_LEVELS, "not_protected") or "not_protected",
            maximum_timeout=maximum_timeout,
            maintenance_note=params.get("maintenance_note"),
        )
        self.runners[runner.id] = runner
        return runner

    def runner(self, runner_id: str) -> Runner:
        if runner_id.isdigit() and int(runner_id) in self.runners:
            return self.runners[int(runner_id)]
        raise ApiError(404, "404 Runner Not Found")

    def runner_details(self, runner: Runner, web_base: str) -> dict[str, Any]:
        # docs.gitlab.com/ee/api/runners.html#get-runners-details
        groups = [self.groups[runner.group_id].as_json(web_base)] if runner.group_id in self.groups else []
        projects = [self.projects[runner.project_id].as_json(web_base)] if runner.project_id in self.projects else []
        return {
            "id": runner.id,
            "description": runner.description,
            "active": not runner.paused,
            "paused": runner.paused,
            "is_shared": runner.runner_type == "instance_type",
            "runner_type": runner.runner_type,
            "name": None,
            "online": False,
            "status": "never_contacted",
            "tag_list": list(runner.tag_list),
            "run_untagged": runner.run_untagged,
            "locked": runner.locked,
            "access_level": runner.access_level,
            "maximum_timeout": runner.maximum_timeout,
            "maintenance_note": runner.maintenance_note,
            "groups": [{"id": g["id"], "name": g["name"], "web_url": g["web_url"]} for g in groups],
            "projects": [
                {"id": p["id"], "name": p["name"], "path_with_namespace": p["path_with_namespace"]} for p in projects
            ],
        }

    def update_runner(self, runner: Runner, params: dict[str, Any]) -> None:
        # docs.gitlab.com/ee/api/runners.html#update-runners-details
        if "description" in params:
            runner.description = str(params["description"] or "")
        runner.paused = _flag(params, "paused", runner.paused)
        runner.locked = _flag(params, "locked", runner.locked)
        runner.run_untagged = _flag(params, "run_untagged", runner.run_untagged)
        tags = _tags(params)
        if tags is not None:
            runner.tag_list = tags
        runner.access_level = _choice(params, "access_level", ACCESS_LEVELS, runner.access_level) or runner.access_level
        if "maximum_timeout" in params:
            runner.maximum_timeout = _integer(params, "maximum_timeout")
        if "maintenance_note" in params:
            runner.maintenance_note = params["maintenance_note"]

    def delete_runner(self, runner: Runner) -> None:
        del self.runners[runner.id]

    def verify_runner(self, params: dict[str, Any]) -> dict[str, Any]:
        # docs.gitlab.com/ee/api/runners.html#verify-authentication-for-a-registered-runner
        token = params.get("token")
        if not token:
            raise ApiError(400, {"error": "token is missing"})
        for runner in self.runners.values():
            if secrets.compare_digest(str(token), runner.token):
                return {"id": runner.id, "token": runner.token, "token_expires_at": None}
        raise ApiError(403, "403 Forbidden")

    # --- group variables: docs.gitlab.com/ee/api/group_level_variables.html ---

    def group_variables(self, group: Group) -> dict[tuple[str, str], GroupVariable]:
        return self.variables.setdefault(group.id, {})

    def group_variable(self, group: Group, key: str, scope: str | None) -> GroupVariable:
        matches = [v for (k, s), v in self.group_variables(group).items() if k == key and scope in (None, s)]
        if not matches:
            raise ApiError(404, "404 Variable Not Found")
        return matches[0]

    def create_group_variable(self, group: Group, params: dict[str, Any]) -> GroupVariable:
        key = params.get("key")
        value = params.get("value")
        if not isinstance(key, str) or not VARIABLE_KEY.fullmatch(key):
            raise ApiError(400, {"message": {"key": ["can contain only letters, digits and '_'."]}})
        if not isinstance(value, str):
            raise ApiError(400, {"error": "value is missing"})
        scope = str(params.get("environment_scope") or "*")
        if (key, scope) in self.group_variables(group):
            raise ApiError(400, {"message": {"key": [f"({key}) has already been taken"]}})
        # masked_and_hidden creates a masked variable that is also hidden; it cannot be unhidden later
        hidden = _flag(params, "masked_and_hidden", False)
        variable = GroupVariable(
            key=key,
            value=value,
            variable_type=_choice(params, "variable_type", VARIABLE_TYPES, "env_var") or "env_var",
            protected=_flag(params, "protected", False),
            masked=hidden or _flag(params, "masked", False),
            hidden=hidden,
            raw=_flag(params, "raw", False),
            environment_scope=scope,
            description=params.get("description"),
        )
        self._check_maskable(variable)
        self.group_variables(group)[(key, scope)] = variable
        return variable

    def update_group_variable(self, group: Group, key: str, scope: str | None, params: dict[str, Any]) -> GroupVariable:
        variable = self.group_variable(group, key, scope)
        if "value" in params:
            variable.value = str(params["value"])
        variable.variable_type = (
            _choice(params, "variable_type", VARIABLE_TYPES, variable.variable_type) or variable.variable_type
        )
        variable.protected = _flag(params, "protected", variable.protected)
        # a hidden variable stays masked: the update API has no masked_and_hidden, and hidden cannot be undone
        variable.masked = variable.hidden or _flag(params, "masked", variable.masked)
        variable.raw = _flag(params, "raw", variable.raw)
        if "description" in params:
            variable.description = params["description"]
        self._check_maskable(variable)
        return variable

    def delete_group_variable(self, group: Group, key: str, scope: str | None) -> None:
        variable = self.group_variable(group, key, scope)
        del self.group_variables(group)[(variable.key, variable.environment_scope)]

    @staticmethod
    def _check_maskable(variable: GroupVariable) -> None:
        if variable.masked and not MASKABLE.fullmatch(variable.value):
            raise ApiError(400, {"message": {"value": ["is invalid"]}})

    # --- repository files: docs.gitlab.com/ee/api/repository_files.html ---

    def get_file(self, project: Project, file_path: str, ref: str | None) -> dict[str, Any]:
        if not ref:
            raise ApiError(400, {"error": "ref is missing"})
        file = project.files.get(ref, {}).get(file_path)
        if file is None:
            raise ApiError(404, "404 File Not Found")
        return {
            "file_name": file_path.rsplit("/", 1)[-1],
            "file_path": file_path,
            "size": len(file.content),
            "encoding": "base64",
            "content": base64.b64encode(file.content).decode(),
            "content_sha256": hashlib.sha256(file.content).hexdigest(),
            "ref": ref,
            "blob_id": hashlib.sha1(b"blob %d\0" % len(file.content) + file.content).hexdigest(),  # noqa: S324
            "commit_id": file.last_commit_id,
            "last_commit_id": file.last_commit_id,
            "execute_filemode": file.execute_filemode,
        }

    def write_file(self, project: Project, file_path: str, params: dict[str, Any], action: str) -> dict[str, Any]:
        branch, message = params.get("branch"), params.get("commit_message")
        if not branch:
            raise ApiError(400, {"error": "branch is missing"})
        if not message:
            raise ApiError(400, {"error": "commit_message is missing"})
        self._ensure_branch(project, str(branch), params.get("start_branch"))
        files = project.files[str(branch)]
        existing = files.get(file_path)
        if action == "create" and existing is not None:
            raise ApiError(400, {"message": "A file with this name already exists"})
        if action in {"update", "delete"} and existing is None:
            raise ApiError(400, {"message": "A file with this name doesn't exist"})
        last_commit_id = params.get("last_commit_id")
        if existing is not None and last_commit_id and last_commit_id != existing.last_commit_id:
            raise ApiError(400, {"message": "You are attempting to update a file that has changed since you started"})
        commit = self._commit(project, str(branch), str(message), action, file_path, params)
        if action == "delete":
            del files[file_path]
            return {}
        content = params.get("content")
        if not isinstance(content, str):
            raise ApiError(400, {"error": "content is missing"})
        encoding = _choice(params, "encoding", ("text", "base64"), "text")
        data = base64.b64decode(content, validate=True) if encoding == "base64" else content.encode()
        executable = _flag(params, "execute_filemode", existing.execute_filemode if existing else False)
        files[file_path] = RepositoryFile(data, commit.id, executable)
        return {"file_path": file_path, "branch": branch}

    def _ensure_branch(self, project: Project, branch: str, start_branch: Any) -> None:
        if branch in project.branches:
            return
        if not start_branch or start_branch not in project.branches:
            raise ApiError(400, {"message": "You can only create or edit files when you are on a branch"})
        project.branches.add(branch)
        project.files[branch] = dict(project.files[str(start_branch)])

    def _commit(
        self, project: Project, branch: str, message: str, action: str, file_path: str, params: dict[str, Any]
    ) -> Commit:
        serial = next(self._commit_serial)
        commit_id = hashlib.sha1(f"{project.id}:{serial}:{message}".encode()).hexdigest()  # noqa: S324
        commit = Commit(
            commit_id, branch, message, action, file_path, params.get("author_name"), params.get("author_email")
        )
        project.commits.append(commit)
        return commit

    # --- releases and their tags: docs.gitlab.com/ee/api/releases/, api/tags.html ---

    def branch_head(self, project: Project, branch: str) -> str:
        """The newest commit of a branch; a seeded branch without commits has one initial commit."""
        for commit in reversed(project.commits):
            if commit.branch == branch:
                return commit.id
        initial = f"{project.id}:{branch}:initial"
        return hashlib.sha1(initial.encode()).hexdigest()  # noqa: S324

    def commit(self, project: Project, sha: str) -> Commit | None:
        return next((c for c in project.commits if c.id == sha), None)

    def _resolve_ref(self, project: Project, ref: str) -> str | None:
        # docs.gitlab.com/ee/api/releases/#create-a-release: ref "can be a commit SHA, another tag name, or a
        # branch name"
        if ref in project.branches:
            return self.branch_head(project, ref)
        if ref in project.tags:
            return project.tags[ref].commit_id
        return ref if self.commit(project, ref) is not None else None

    def tag(self, project: Project, tag_name: str) -> Tag:
        if tag_name not in project.tags:
            raise ApiError(404, "404 Tag Not Found")
        return project.tags[tag_name]

    def tag_json(self, project: Project, tag: Tag, web_base: str) -> dict[str, Any]:
        # docs.gitlab.com/ee/api/tags.html#get-a-single-repository-tag
        release = project.releases.get(tag.name)
        return {
            "name": tag.name,
            "message": tag.message,
            "target": tag.commit_id,
            "commit": self.commit_json(project, tag.commit_id),
            "release": None if release is None else {"tag_name": tag.name, "description": release.description},
            "protected": False,
            "created_at": None,
        }

    def commit_json(self, project: Project, sha: str) -> dict[str, Any]:
        commit = self.commit(project, sha)
        message = commit.message if commit else "Initial commit"
        author_name = (commit.author_name if commit else None) or self.user["name"]
        author_email = (commit.author_email if commit else None) or f"{self.user['username']}@example.invalid"
        parents = [c.id for c in project.commits if commit and c.branch == commit.branch]
        parent_ids = parents[parents.index(sha) - 1 : parents.index(sha)] if commit and parents.index(sha) else []
        return {
            "id": sha,
            "short_id": sha[:8],
            "title": message.splitlines()[0],
            "created_at": "2026-01-01T00:00:00Z",
            "parent_ids": parent_ids,
            "message": message,
            "author_name": author_name,
            "author_email": author_email,
            "authored_date": "2026-01-01T00:00:00Z",
            "committer_name": author_name,
            "committer_email": author_email,
            "committed_date": "2026-01-01T00:00:00Z",
        }

    def release(self, project: Project, tag_name: str) -> Release:
        if tag_name not in project.releases:
            raise ApiError(404, "404 Not Found")
        return project.releases[tag_name]

    def create_release(self, project: Project, params: dict[str, Any]) -> Release:
        # docs.gitlab.com/ee/api/releases/#create-a-release
        tag_name = params.get("tag_name")
        if not isinstance(tag_name, str) or not tag_name:
            raise ApiError(400, {"error": "tag_name is missing"})
        if tag_name in project.releases:
            raise ApiError(409, "Release already exists")
        if tag_name not in project.tags:
            # "ref: Required if tag_name doesn't exist"; the tag is created from it (annotated with tag_message)
            ref = params.get("ref")
            if not ref:
                raise ApiError(422, "Ref is not specified")
            sha = self._resolve_ref(project, str(ref))
            if sha is None:
                raise ApiError(400, "Target " + str(ref) + " is invalid")
            project.tags[tag_name] = Tag(tag_name, sha, params.get("tag_message"))
        now = datetime.now(UTC).replace(microsecond=0)
        release = Release(
            tag_name=tag_name,
            # "name: The release name" (GitLab uses the tag name when it is omitted)
            name=str(params.get("name") or tag_name),
            description=str(params.get("description") or ""),
            created_at=now,
            released_at=_timestamp(params.get("released_at")) or now,
            milestones=[str(m) for m in params.get("milestones") or []],
        )
        project.releases[tag_name] = release
        return release

    def update_release(self, project: Project, tag_name: str, params: dict[str, Any]) -> Release:
        # docs.gitlab.com/ee/api/releases/#update-a-release: name, description, milestones, released_at
        release = self.release(project, tag_name)
        if "name" in params:
            release.name = str(params["name"] or "")
        if "description" in params:
            release.description = str(params["description"] or "")
        if "milestones" in params:
            release.milestones = [str(m) for m in params["milestones"] or []]
        released_at = _timestamp(params.get("released_at"))
        if released_at is not None:
            release.released_at = released_at
        return release

    def delete_release(self, project: Project, tag_name: str) -> Release:
        # docs.gitlab.com/ee/api/releases/#delete-a-release: "Deleting a release doesn't delete the associated tag"
        return project.releases.pop(self.release(project, tag_name).tag_name)

    def release_json(self, project: Project, release: Release, web_base: str, html: bool = False) -> dict[str, Any]:
        # docs.gitlab.com/ee/api/releases/#get-a-release-by-a-tag-name (the response of create/update/delete too)
        tag = project.tags[release.tag_name]
        web = f"{web_base}/{project.path_with_namespace}"
        filters = f"release_tag={release.tag_name}&scope=all"
        body: dict[str, Any] = {
            "tag_name": release.tag_name,
            "description": release.description,
            "name": release.name,
            "created_at": _iso(release.created_at),
            "released_at": _iso(release.released_at),
            "upcoming_release": release.released_at > datetime.now(UTC),
            "author": {
                **self.user,
                "avatar_url": f"{web_base}/uploads/-/system/user/avatar/{self.user['id']}/avatar.png",
                "web_url": f"{web_base}/{self.user['username']}",
            },
            "commit": self.commit_json(project, tag.commit_id),
            "milestones": [{"title": title} for title in release.milestones],
            "commit_path": f"/{project.path_with_namespace}/-/commit/{tag.commit_id}",
            "tag_path": f"/{project.path_with_namespace}/-/tags/{release.tag_name}",
            "assets": {"count": 0, "sources": [], "links": []},
            "evidences": [],
            "_links": {
                "closed_issues_url": f"{web}/-/issues?{filters}&state=closed",
                "closed_merge_requests_url": f"{web}/-/merge_requests?{filters}&state=closed",
                "edit_url": f"{web}/-/releases/{release.tag_name}/edit",
                "merged_merge_requests_url": f"{web}/-/merge_requests?{filters}&state=merged",
                "opened_issues_url": f"{web}/-/issues?{filters}&state=opened",
                "opened_merge_requests_url": f"{web}/-/merge_requests?{filters}&state=opened",
                "self": f"{web}/-/releases/{release.tag_name}",
            },
        }
        if html:
            # include_html_description=true adds description_html (not rendered here: the text, escaped)
            body["description_html"] = "<p>" + _html_escape(release.description) + "</p>"
        return body


def _timestamp(value: Any) -> datetime | None:
    # released_at: "Expected in ISO 8601 format (2019-03-15T08:00:00Z)"
    if value in (None, ""):
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, {"error": "released_at is invalid"}) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
