"""Stand-in for pulumi-gitlab 10.4.0 (bridging terraform-provider-gitlab): UserRunner, GroupVariable, RepositoryFile,
Release.

It makes the REST calls the real provider makes, in the same order and with the same parameters, as read in
terraform-provider-gitlab ``internal/provider/``:
- ``resource_gitlab_user_runner.go`` (framework resource; read at VijetaPriya47/Gitlab-Terraform-Provider
  08f59b47): Create = POST /user/runners then GET /runners/:id; Read = GET; Update = PUT; Delete = DELETE;
  runner_type, group_id, project_id RequiresReplace; token is Computed and only known from the create call.
- ``resource_gitlab_group_variable.go`` (same tree, 2b2a1ebf): hidden sends ``masked=false,
  masked_and_hidden=true``; group, key, hidden RequiresReplace; environment_scope defaults to "*"; the
  API returns a hidden value as null, so the state keeps the configured value (groupVariableToStateModel).
- ``resource_gitlab_repository_file.go`` (sysedwinistrator fork 0c3e52b8): project, file_path, branch
  ForceNew; overwrite_on_create reads the file and updates it with its last_commit_id; update and delete
  re-read last_commit_id first; delete's message is "[DELETE]: <commit_message>".
- ``resource_gitlab_release.go`` (framework resource; VijetaPriya47/Gitlab-Terraform-Provider 3ffb51d2):
  Create = POST /projects/:id/releases (no read-back); Read = GET /projects/:id/releases/:tag_name, erroring on
  any failure, a 404 too; Update = PUT (name, description, milestones, released_at); Delete = DELETE; project and
  tag_name RequiresReplace; the id is utils.BuildTwoPartID(project, tag_name) = "<project>:<tag_name>".
Requests go through go-gitlab's conventions: ``Authorization: Bearer`` (the SDK's ``token`` doc: "The OAuth
method is used"), path parameters escaped with "." as %2E, GET/DELETE options in the query string.
"""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.error
import urllib.request
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

from lab.providers import wire
from lab.providers.model import Package, Properties, ProviderError, ResourceType

API_VERSION_PATH = "api/v4/"
VARIABLE_KEY = re.compile(r"[a-zA-Z0-9_]{1,255}")


def escape(segment: str) -> str:
    """go-gitlab PathEscape: url.PathEscape with "/" escaped too, and "." as %2E."""
    return quote(segment, safe="").replace(".", "%2E")


def api_base(base_url: str) -> str:
    """go-gitlab setBaseURL: end with "/", and append api/v4/ unless the path already ends with it."""
    url = base_url if base_url.endswith("/") else base_url + "/"
    return url if url.endswith(API_VERSION_PATH) else url + API_VERSION_PATH


def _bool(value: Any, default: bool) -> bool:
    # Provider config booleans arrive JSON-encoded ("true"), as pulumi_gitlab/provider.py sends them
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


class GitLabClient:
    def __init__(self) -> None:
        self.base = ""
        self.token = ""

    def request(
        self, method: str, path: str, options: dict[str, Any] | None = None, query: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """go-gitlab NewRequest: options are the JSON body of POST/PUT and the query of GET/DELETE."""
        if not self.base:
            raise ProviderError("gitlab stand-in: the provider is not configured (no baseUrl)")
        options = {k: v for k, v in (options or {}).items() if v is not None}
        url, data, query = self.base + path, None, dict(query or {})
        if method in {"POST", "PUT"}:
            data = json.dumps(options).encode()
        else:
            query |= options
        if query:
            url += "?" + urlencode(query)
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310
        request.add_header("Accept", "application/json")
        request.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                body = response.read()
                return response.status, json.loads(body) if body else None
        except urllib.error.HTTPError as error:
            body = error.read()
            return error.code, json.loads(body) if body else None
        except urllib.error.URLError as error:
            raise ProviderError(f"gitlab stand-in: {method} {self.base}{path}: {error.reason}") from None

    def call(
        self,
        method: str,
        path: str,
        options: dict[str, Any] | None = None,
        query: dict[str, str] | None = None,
        missing_ok: bool = False,
    ) -> Any:
        status, body = self.request(method, path, options, query)
        if missing_ok and status == 404:
            return None
        if status >= 400:
            raise ProviderError(f"GitLab API error: {method} {path}: {status} {json.dumps(body)}")
        return body


def _int(value: Any) -> int | None:
    # the bridge hands the TF provider an Int64; the engine sent a double
    return None if value is None else int(value)


class UserRunnerType(ResourceType):
    pulumi_type = "gitlab:index/userRunner:UserRunner"
    replace_on_changes = frozenset({"runnerType", "groupId", "projectId"})
    secret_outputs = frozenset({"token"})
    computed_outputs: ClassVar[tuple[str, ...]] = ("token",)
    optional_computed = frozenset(
        {"description", "paused", "locked", "untagged", "tagLists", "accessLevel", "maximumTimeout"}
    )
    set_valued = frozenset({"tagLists"})

    def __init__(self, client: GitLabClient) -> None:
        self.client = client

    def check(self, inputs: Properties) -> list[tuple[str, str]]:
        # resource_gitlab_user_runner.go Schema validators and ValidateConfig
        failures = []
        runner_type = inputs.get("runnerType")
        if runner_type not in (None, "instance_type", "group_type", "project_type"):
            failures.append(("runnerType", f"'{runner_type}' is not one of instance_type, group_type, project_type"))
        if inputs.get("accessLevel") not in (None, "not_protected", "ref_protected"):
            failures.append(("accessLevel", f"'{inputs['accessLevel']}' is not one of not_protected, ref_protected"))
        if inputs.get("maximumTimeout") is not None and inputs["maximumTimeout"] < 600:
            failures.append(("maximumTimeout", f"{inputs['maximumTimeout']:g} is below the minimum of 600 seconds"))
        if runner_type == "group_type" and ("groupId" not in inputs or "projectId" in inputs):
            failures.append(("groupId", "a group_type runner needs groupId and no projectId"))
        if runner_type == "project_type" and ("projectId" not in inputs or "groupId" in inputs):
            failures.append(("projectId", "a project_type runner needs projectId and no groupId"))
        return failures

    def _options(self, inputs: Properties) -> dict[str, Any]:
        return {
            "description": inputs.get("description"),
            "paused": inputs.get("paused"),
            "locked": inputs.get("locked"),
            "run_untagged": inputs.get("untagged"),
            "tag_list": inputs.get("tagLists"),
            "access_level": inputs.get("accessLevel"),
            "maximum_timeout": _int(inputs.get("maximumTimeout")),
            "maintenance_note": inputs.get("maintenanceNote"),
        }

    @staticmethod
    def _state(details: dict[str, Any]) -> Properties:
        # modelToStateModel: the runner's attributes as GitLab reports them
        state: Properties = {
            "runnerType": details["runner_type"],
            "description": details.get("description") or "",
            "paused": bool(details.get("paused")),
            "locked": bool(details.get("locked")),
            "untagged": bool(details.get("run_untagged")),
            "accessLevel": details.get("access_level"),
            "maximumTimeout": details.get("maximum_timeout") or 0,
            "tagLists": sorted(details.get("tag_list") or []),
        }
        if details["runner_type"] == "group_type" and details.get("groups"):
            state["groupId"] = details["groups"][0]["id"]
        if details["runner_type"] == "project_type" and details.get("projects"):
            state["projectId"] = details["projects"][0]["id"]
        return state

    def create(self, inputs: Properties) -> tuple[str, Properties]:
        options = {
            "runner_type": inputs["runnerType"],
            "group_id": _int(inputs.get("groupId")),
            "project_id": _int(inputs.get("projectId")),
            **self._options(inputs),
        }
        created = self.client.call("POST", "user/runners", options)
        details = self.client.call("GET", f"runners/{created['id']}")
        return str(created["id"]), {**inputs, **self._state(details), "token": created["token"]}

    def read(self, resource_id: str, state: Properties) -> Properties | None:
        details = self.client.call("GET", f"runners/{escape(resource_id)}", missing_ok=True)
        return None if details is None else {**state, **self._state(details)}

    def update(self, resource_id: str, state: Properties, inputs: Properties) -> Properties:
        details = self.client.call("PUT", f"runners/{escape(resource_id)}", self._options(inputs))
        return {**state, **inputs, **self._state(details)}

    def delete(self, resource_id: str, state: Properties) -> None:
        self.client.call("DELETE", f"runners/{escape(resource_id)}")


class GroupVariableType(ResourceType):
    pulumi_type = "gitlab:index/groupVariable:GroupVariable"
    defaults: ClassVar[Properties] = {"environmentScope": "*"}
    replace_on_changes = frozenset({"group", "key", "hidden"})
    optional_computed = frozenset({"variableType", "protected", "masked", "hidden", "raw", "description"})

    def __init__(self, client: GitLabClient) -> None:
        self.client = client

    def check(self, inputs: Properties) -> list[tuple[str, str]]:
        failures = []
        if "key" in inputs and not VARIABLE_KEY.fullmatch(str(inputs["key"])):
            failures.append(("key", f"'{inputs['key']}' is invalid, only A-Z, a-z, 0-9, and _ are allowed"))
        if inputs.get("variableType") not in (None, "env_var", "file"):
            failures.append(("variableType", f"'{inputs['variableType']}' is not one of env_var, file"))
        if inputs.get("hidden") and not inputs.get("masked"):
            failures.append(("hidden", "a variable cannot be hidden without being masked: set masked to true"))
        return failures

    @staticmethod
    def _path(group: str, key: str | None = None) -> str:
        path = f"groups/{escape(group)}/variables"
        return path if key is None else f"{path}/{escape(key)}"

    @staticmethod
    def _state(variable: dict[str, Any], group: str, configured_value: Any) -> Properties:
        # groupVariableToStateModel: a hidden variable's value comes back null, keep the configured one
        return {
            "group": group,
            "key": variable["key"],
            "value": configured_value if variable.get("hidden") else variable.get("value"),
            "variableType": variable.get("variable_type"),
            "protected": bool(variable.get("protected")),
            "masked": bool(variable.get("masked")),
            "hidden": bool(variable.get("hidden")),
            "environmentScope": variable.get("environment_scope"),
            "raw": bool(variable.get("raw")),
            "description": variable.get("description") or "",
        }

    @staticmethod
    def _options(inputs: Properties) -> dict[str, Any]:
        return {
            "value": inputs["value"],
            "masked": bool(inputs.get("masked", False)),
            "raw": bool(inputs.get("raw", False)),
            "description": inputs.get("description") or "",
            "environment_scope": inputs["environmentScope"],
            "protected": inputs.get("protected"),
            "variable_type": inputs.get("variableType"),
        }

    def create(self, inputs: Properties) -> tuple[str, Properties]:
        options = {"key": inputs["key"], **self._options(inputs)}
        if inputs.get("hidden"):
            options |= {"masked": False, "masked_and_hidden": True}
        variable = self.client.call("POST", self._path(inputs["group"]), options)
        resource_id = f"{inputs['group']}:{inputs['key']}:{inputs['environmentScope']}"
        return resource_id, {**inputs, **self._state(variable, inputs["group"], inputs["value"])}

    def read(self, resource_id: str, state: Properties) -> Properties | None:
        group, key, scope = resource_id.split(":", 2)
        variable = self.client.call(
            "GET", self._path(group, key), query={"filter[environment_scope]": scope}, missing_ok=True
        )
        return None if variable is None else {**state, **self._state(variable, group, state.get("value"))}

    def update(self, resource_id: str, state: Properties, inputs: Properties) -> Properties:
        # utils.WithEnvironmentScopeFilter adds filter[environment_scope] to the URL of any method
        scope = {"filter[environment_scope]": inputs["environmentScope"]}
        variable = self.client.call("PUT", self._path(inputs["group"], inputs["key"]), self._options(inputs), scope)
        return {**state, **inputs, **self._state(variable, inputs["group"], inputs["value"])}

    def delete(self, resource_id: str, state: Properties) -> None:
        query = {"filter[environment_scope]": state.get("environmentScope", "*")}
        self.client.call("DELETE", self._path(state["group"], state["key"]), query=query)


class RepositoryFileType(ResourceType):
    pulumi_type = "gitlab:index/repositoryFile:RepositoryFile"
    replace_on_changes = frozenset({"project", "filePath", "branch"})
    computed_outputs: ClassVar[tuple[str, ...]] = (
        "fileName",
        "size",
        "contentSha256",
        "ref",
        "blobId",
        "commitId",
        "lastCommitId",
    )

    def __init__(self, client: GitLabClient) -> None:
        self.client = client

    def check(self, inputs: Properties) -> list[tuple[str, str]]:
        failures = []
        if inputs.get("encoding") not in (None, "base64", "text"):
            failures.append(("encoding", f"'{inputs['encoding']}' is not one of base64, text"))
        if str(inputs.get("filePath", "x")).startswith(("/", "./")):
            failures.append(("filePath", f"'{inputs['filePath']}' must be relative, without a leading '/' or './'"))
        return failures

    def _path(self, inputs: Properties) -> str:
        return f"projects/{escape(str(inputs['project']))}/repository/files/{escape(str(inputs['filePath']))}"

    def _message(self, inputs: Properties, action: str) -> str:
        specific = inputs.get(f"{action}CommitMessage")
        if specific:
            return str(specific)
        general = inputs.get("commitMessage")
        if not general:
            raise ProviderError(f"gitlab stand-in: RepositoryFile needs commitMessage or {action}CommitMessage")
        return f"[DELETE]: {general}" if action == "delete" else str(general)

    def _write_options(self, inputs: Properties, action: str) -> dict[str, Any]:
        return {
            "branch": inputs["branch"],
            "encoding": inputs["encoding"],
            "author_email": inputs.get("authorEmail"),
            "author_name": inputs.get("authorName"),
            "content": inputs["content"],
            "commit_message": self._message(inputs, action),
            "start_branch": inputs.get("startBranch"),
            "execute_filemode": inputs.get("executeFilemode"),
        }

    def _current(self, inputs: Properties) -> Any:
        return self.client.call("GET", self._path(inputs), query={"ref": inputs["branch"]}, missing_ok=True)

    @staticmethod
    def _state(inputs: Properties, file: dict[str, Any]) -> Properties:
        content = file["content"]
        if inputs.get("encoding") == "text":
            content = base64.b64decode(content).decode()
        return {
            **inputs,
            "content": content,
            "fileName": file["file_name"],
            "size": file["size"],
            "contentSha256": file["content_sha256"],
            "ref": file["ref"],
            "blobId": file["blob_id"],
            "commitId": file["commit_id"],
            "lastCommitId": file["last_commit_id"],
        }

    def create(self, inputs: Properties) -> tuple[str, Properties]:
        existing = self._current(inputs) if inputs.get("overwriteOnCreate") else None
        if existing is not None:
            options = {**self._write_options(inputs, "update"), "last_commit_id": existing["last_commit_id"]}
            self.client.call("PUT", self._path(inputs), options)
        else:
            self.client.call("POST", self._path(inputs), self._write_options(inputs, "create"))
        resource_id = f"{inputs['project']}:{inputs['branch']}:{inputs['filePath']}"
        return resource_id, self._state(inputs, self.client.call("GET", self._path(inputs), {"ref": inputs["branch"]}))

    def read(self, resource_id: str, state: Properties) -> Properties | None:
        file = self._current(state)
        return None if file is None else self._state(state, file)

    def update(self, resource_id: str, state: Properties, inputs: Properties) -> Properties:
        existing = self.client.call("GET", self._path(inputs), {"ref": inputs["branch"]})
        options = {**self._write_options(inputs, "update"), "last_commit_id": existing["last_commit_id"]}
        self.client.call("PUT", self._path(inputs), options)
        return self._state(inputs, self.client.call("GET", self._path(inputs), {"ref": inputs["branch"]}))

    def delete(self, resource_id: str, state: Properties) -> None:
        existing = self.client.call("GET", self._path(state), {"ref": state["branch"]})
        options = {
            "branch": state["branch"],
            "author_email": state.get("authorEmail"),
            "author_name": state.get("authorName"),
            "commit_message": self._message(state, "delete"),
            "last_commit_id": existing["last_commit_id"],
        }
        self.client.call("DELETE", self._path(state), options)


def _rfc3339(value: Any) -> str:
    """Go's time.Format(time.RFC3339) of a GitLab timestamp: whole seconds, "Z" for UTC."""
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    text = moment.replace(microsecond=0).isoformat()
    return text.replace("+00:00", "Z")


class ReleaseType(ResourceType):
    # resource_gitlab_release.go Schema: project, tag_name Required + RequiresReplace; name, description, ref,
    # released_at, assets Optional+Computed; tag_message, milestones Optional; the rest Computed
    pulumi_type = "gitlab:index/release:Release"
    replace_on_changes = frozenset({"project", "tagName"})
    computed_outputs: ClassVar[tuple[str, ...]] = (
        "tagPath",
        "descriptionHtml",
        "createdAt",
        "author",
        "commit",
        "upcomingRelease",
        "commitPath",
        "links",
    )
    optional_computed = frozenset({"name", "description", "ref", "releasedAt", "assets"})
    set_valued = frozenset({"milestones"})

    def __init__(self, client: GitLabClient) -> None:
        self.client = client

    def check(self, inputs: Properties) -> list[tuple[str, str]]:
        # Schema validators: stringvalidator.LengthAtLeast(1) on project and tag_name
        return [(key, "must be at least 1 character long") for key in ("project", "tagName") if inputs.get(key) == ""]

    @staticmethod
    def _path(project: str, tag_name: str | None = None) -> str:
        path = f"projects/{escape(project)}/releases"
        return path if tag_name is None else f"{path}/{escape(tag_name)}"

    @staticmethod
    def _state(release: dict[str, Any]) -> Properties:
        # releaseModelToState: every attribute from the API's answer (description_html "" unless returned)
        author, commit, links = release.get("author") or {}, release.get("commit") or {}, release.get("_links") or {}
        return {
            "name": release.get("name") or "",
            "tagName": release["tag_name"],
            "tagPath": release.get("tag_path") or "",
            "description": release.get("description") or "",
            "descriptionHtml": release.get("description_html") or "",
            "createdAt": _rfc3339(release["created_at"]),
            "releasedAt": _rfc3339(release["released_at"]),
            "author": {
                "id": author.get("id", 0),
                "name": author.get("name") or "",
                "username": author.get("username") or "",
                "state": author.get("state") or "",
                "avatarUrl": author.get("avatar_url") or "",
                "webUrl": author.get("web_url") or "",
            },
            "commit": {
                "id": commit.get("id") or "",
                "shortId": commit.get("short_id") or "",
                "title": commit.get("title") or "",
                "createdAt": _rfc3339(commit["created_at"]) if commit.get("created_at") else "",
                "parentIds": list(commit.get("parent_ids") or []),
                "message": commit.get("message") or "",
                "authorName": commit.get("author_name") or "",
                "authorEmail": commit.get("author_email") or "",
                "authoredDate": _rfc3339(commit["authored_date"]) if commit.get("authored_date") else "",
                "committerName": commit.get("committer_name") or "",
                "committerEmail": commit.get("committer_email") or "",
                "committedDate": _rfc3339(commit["committed_date"]) if commit.get("committed_date") else "",
            },
            "upcomingRelease": bool(release.get("upcoming_release")),
            "commitPath": release.get("commit_path") or "",
            "assets": {"count": (release.get("assets") or {}).get("count", 0)},
            "links": {
                "closedIssuesUrl": links.get("closed_issues_url") or "",
                "closedMergeRequestsUrl": links.get("closed_merge_requests_url") or "",
                "editUrl": links.get("edit_url") or "",
                "mergedMergeRequestsUrl": links.get("merged_merge_requests_url") or "",
                "openedIssuesUrl": links.get("opened_issues_url") or "",
                "openedMergeRequestsUrl": links.get("opened_merge_requests_url") or "",
                "self": links.get("self") or "",
            },
        }

    def create(self, inputs: Properties) -> tuple[str, Properties]:
        # Create: tag_name always; name, tag_message, description, ref when set; released_at when non-empty;
        # milestones always, each as the framework's attr.Value String() (a quoted string), [] when none
        options = {
            "tag_name": inputs["tagName"],
            "name": inputs.get("name"),
            "tag_message": inputs.get("tagMessage"),
            "description": inputs.get("description"),
            "ref": inputs.get("ref"),
            "released_at": inputs.get("releasedAt") or None,
            "milestones": [json.dumps(str(m)) for m in inputs.get("milestones") or []],
        }
        release = self.client.call("POST", self._path(str(inputs["project"])), options)
        resource_id = f"{inputs['project']}:{inputs['tagName']}"
        return resource_id, {**inputs, **self._state(release)}

    def read(self, resource_id: str, state: Properties) -> Properties | None:
        # Read: utils.ParseTwoPartID(id); a failed GET (404 included) is an error, not a vanished resource
        project, tag_name = resource_id.split(":", 1)
        release = self.client.call("GET", self._path(project, tag_name))
        return {**state, "project": project, **self._state(release)}

    def update(self, resource_id: str, state: Properties, inputs: Properties) -> Properties:
        # Update: name, description, milestones, released_at when known in the plan; ref and tag_message are not sent
        options = {
            "name": inputs.get("name"),
            "description": inputs.get("description"),
            "milestones": [str(m) for m in inputs["milestones"]] if "milestones" in inputs else None,
            "released_at": inputs.get("releasedAt"),
        }
        release = self.client.call("PUT", self._path(str(inputs["project"]), str(inputs["tagName"])), options)
        return {**state, **inputs, **self._state(release)}

    def delete(self, resource_id: str, state: Properties) -> None:
        project, tag_name = resource_id.split(":", 1)
        self.client.call("DELETE", self._path(project, tag_name))


class GitLabPackage(Package):
    name = "gitlab"
    version = "10.4.0"

    def __init__(self) -> None:
        self.client = GitLabClient()
        super().__init__(
            [
                UserRunnerType(self.client),
                GroupVariableType(self.client),
                RepositoryFileType(self.client),
                ReleaseType(self.client),
            ]
        )

    def configure(self, config: Properties) -> None:
        # provider.go: base_url and token fall back to GITLAB_BASE_URL and GITLAB_TOKEN
        if wire.is_unknown(config):
            return  # a preview with provider config not known yet: the bridge skips configuring too
        base_url = config.get("baseUrl") or os.environ.get("GITLAB_BASE_URL")
        if not base_url:
            raise ProviderError("gitlab stand-in: baseUrl is not set (provider input baseUrl or $GITLAB_BASE_URL)")
        self.client.base = api_base(str(base_url))
        self.client.token = str(config.get("token") or os.environ.get("GITLAB_TOKEN") or "")
        # early_auth_check (default true): a GET of the current user proves the URL and the token
        if _bool(config.get("earlyAuthCheck", os.environ.get("GITLAB_EARLY_AUTH_CHECK")), default=True):
            status, _ = self.client.request("GET", "user")
            if status != 200:
                raise ProviderError(f"gitlab stand-in: GET {self.client.base}user answered {status}: check token")


def package() -> GitLabPackage:
    return GitLabPackage()
