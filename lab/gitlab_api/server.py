"""HTTP front of the GitLab REST API stand-in: routing, authentication and the request record.

Only the endpoints the real terraform-provider-gitlab calls for ``UserRunner``, ``GroupVariable``,
``RepositoryFile`` and ``Release`` (plus the tag a release creates from a ref, the current-user check of its
provider configure, the group/project lookups a client makes, and ``POST /runners/verify`` that
``gitlab-runner register`` calls with a ``glrt-`` token) exist; any other path is a 404, so a client that needs
more fails loudly instead of passing by luck.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from lab.gitlab_api.store import ApiError, GitLabState

API_PREFIX = "/api/v4"
REDACTION = "[secret]"

Reply = tuple[int, Any]
Handler = Callable[["Call"], Reply]


@dataclass
class Call:
    """One API request, decoded: the route's path parameters, query and JSON/form body."""

    state: GitLabState
    web_base: str
    params: tuple[str, ...]
    query: dict[str, str]
    body: dict[str, Any]

    @property
    def merged(self) -> dict[str, Any]:
        return {**self.query, **self.body}


# --- handlers: each cites the GitLab API docs page it models ---


def current_user(call: Call) -> Reply:
    # docs.gitlab.com/ee/api/users.html#list-current-user; the provider's early auth check calls it
    return 200, call.state.user


def get_group(call: Call) -> Reply:
    # docs.gitlab.com/ee/api/groups.html#get-a-single-group
    return 200, call.state.group(call.params[0]).as_json(call.web_base)


def get_project(call: Call) -> Reply:
    # docs.gitlab.com/ee/api/projects.html#get-a-single-project
    return 200, call.state.project(call.params[0]).as_json(call.web_base)


def create_user_runner(call: Call) -> Reply:
    # docs.gitlab.com/ee/api/users.html#create-a-runner-linked-to-a-user (201: id, token, token_expires_at)
    runner = call.state.create_user_runner(call.body)
    return 201, {"id": runner.id, "token": runner.token, "token_expires_at": None}


def get_runner(call: Call) -> Reply:
    # docs.gitlab.com/ee/api/runners.html#get-runners-details
    return 200, call.state.runner_details(call.state.runner(call.params[0]), call.web_base)


def update_runner(call: Call) -> Reply:
    # docs.gitlab.com/ee/api/runners.html#update-runners-details
    runner = call.state.runner(call.params[0])
    call.state.update_runner(runner, call.body)
    return 200, call.state.runner_details(runner, call.web_base)


def delete_runner(call: Call) -> Reply:
    # docs.gitlab.com/ee/api/runners.html#delete-a-runner-by-id
    call.state.delete_runner(call.state.runner(call.params[0]))
    return 204, None


def verify_runner(call: Call) -> Reply:
    # docs.gitlab.com/ee/api/runners.html#verify-authentication-for-a-registered-runner;
    # gitlab-runner common/network.go VerifyRunnerRequest{token, system_id} -> VerifyRunnerResponse{id, token, ...}
    return 200, call.state.verify_runner(call.body)


def list_group_variables(call: Call) -> Reply:
    # docs.gitlab.com/ee/api/group_level_variables.html#list-group-variables
    group = call.state.group(call.params[0])
    return 200, [v.as_json() for v in call.state.group_variables(group).values()]


def _scope(call: Call) -> str | None:
    # terraform-provider-gitlab utils.WithEnvironmentScopeFilter sends filter[environment_scope]
    return call.query.get("filter[environment_scope]")


def create_group_variable(call: Call) -> Reply:
    # docs.gitlab.com/ee/api/group_level_variables.html#create-variable
    group = call.state.group(call.params[0])
    return 201, call.state.create_group_variable(group, call.body).as_json()


def get_group_variable(call: Call) -> Reply:
    # docs.gitlab.com/ee/api/group_level_variables.html#show-variable-details
    group = call.state.group(call.params[0])
    return 200, call.state.group_variable(group, call.params[1], _scope(call)).as_json()


def update_group_variable(call: Call) -> Reply:
    # docs.gitlab.com/ee/api/group_level_variables.html#update-variable
    group = call.state.group(call.params[0])
    return 200, call.state.update_group_variable(group, call.params[1], _scope(call), call.body).as_json()


def delete_group_variable(call: Call) -> Reply:
    # docs.gitlab.com/ee/api/group_level_variables.html#remove-variable
    call.state.delete_group_variable(call.state.group(call.params[0]), call.params[1], _scope(call))
    return 204, None


def get_file(call: Call) -> Reply:
    # docs.gitlab.com/ee/api/repository_files.html#get-file-from-repository
    project = call.state.project(call.params[0])
    return 200, call.state.get_file(project, call.params[1], call.query.get("ref"))


def create_file(call: Call) -> Reply:
    # docs.gitlab.com/ee/api/repository_files.html#create-new-file-in-repository
    return 201, call.state.write_file(call.state.project(call.params[0]), call.params[1], call.body, "create")


def update_file(call: Call) -> Reply:
    # docs.gitlab.com/ee/api/repository_files.html#update-existing-file-in-repository
    return 200, call.state.write_file(call.state.project(call.params[0]), call.params[1], call.body, "update")


def delete_file(call: Call) -> Reply:
    # docs.gitlab.com/ee/api/repository_files.html#delete-existing-file-in-repository
    call.state.write_file(call.state.project(call.params[0]), call.params[1], call.merged, "delete")
    return 204, None


def list_commits(call: Call) -> Reply:
    # docs.gitlab.com/ee/api/commits.html#list-repository-commits (newest first)
    project = call.state.project(call.params[0])
    ref = call.query.get("ref_name")
    commits = [c for c in reversed(project.commits) if ref in (None, c.branch)]
    return 200, [
        {
            "id": c.id,
            "short_id": c.id[:8],
            "title": c.message.splitlines()[0],
            "message": c.message,
            "author_name": c.author_name,
            "author_email": c.author_email,
        }
        for c in commits
    ]


def _html(call: Call) -> bool:
    return call.query.get("include_html_description", "").lower() == "true"


def create_release(call: Call) -> Reply:
    # docs.gitlab.com/ee/api/releases/#create-a-release (201; the tag is created from ref when it does not exist)
    project = call.state.project(call.params[0])
    release = call.state.create_release(project, call.body)
    return 201, call.state.release_json(project, release, call.web_base)


def get_release(call: Call) -> Reply:
    # docs.gitlab.com/ee/api/releases/#get-a-release-by-a-tag-name (include_html_description adds description_html)
    project = call.state.project(call.params[0])
    release = call.state.release(project, call.params[1])
    return 200, call.state.release_json(project, release, call.web_base, _html(call))


def update_release(call: Call) -> Reply:
    # docs.gitlab.com/ee/api/releases/#update-a-release
    project = call.state.project(call.params[0])
    release = call.state.update_release(project, call.params[1], call.body)
    return 200, call.state.release_json(project, release, call.web_base)


def delete_release(call: Call) -> Reply:
    # docs.gitlab.com/ee/api/releases/#delete-a-release (200 with the deleted release; the tag stays)
    project = call.state.project(call.params[0])
    release = call.state.delete_release(project, call.params[1])
    return 200, call.state.release_json(project, release, call.web_base)


def get_tag(call: Call) -> Reply:
    # docs.gitlab.com/ee/api/tags.html#get-a-single-repository-tag
    project = call.state.project(call.params[0])
    return 200, call.state.tag_json(project, call.state.tag(project, call.params[1]), call.web_base)


SEGMENT = r"([^/]+)"
ROUTES: list[tuple[str, re.Pattern[str], Handler, bool]] = [
    # (method, path pattern under /api/v4, handler, needs a user token)
    ("GET", re.compile(r"/user"), current_user, True),
    ("POST", re.compile(r"/user/runners"), create_user_runner, True),
    ("POST", re.compile(r"/runners/verify"), verify_runner, False),
    ("GET", re.compile(rf"/runners/{SEGMENT}"), get_runner, True),
    ("PUT", re.compile(rf"/runners/{SEGMENT}"), update_runner, True),
    ("DELETE", re.compile(rf"/runners/{SEGMENT}"), delete_runner, True),
    ("GET", re.compile(rf"/groups/{SEGMENT}"), get_group, True),
    ("GET", re.compile(rf"/groups/{SEGMENT}/variables"), list_group_variables, True),
    ("POST", re.compile(rf"/groups/{SEGMENT}/variables"), create_group_variable, True),
    ("GET", re.compile(rf"/groups/{SEGMENT}/variables/{SEGMENT}"), get_group_variable, True),
    ("PUT", re.compile(rf"/groups/{SEGMENT}/variables/{SEGMENT}"), update_group_variable, True),
    ("DELETE", re.compile(rf"/groups/{SEGMENT}/variables/{SEGMENT}"), delete_group_variable, True),
    ("GET", re.compile(rf"/projects/{SEGMENT}"), get_project, True),
    ("GET", re.compile(rf"/projects/{SEGMENT}/repository/commits"), list_commits, True),
    ("GET", re.compile(rf"/projects/{SEGMENT}/repository/files/{SEGMENT}"), get_file, True),
    ("POST", re.compile(rf"/projects/{SEGMENT}/repository/files/{SEGMENT}"), create_file, True),
    ("PUT", re.compile(rf"/projects/{SEGMENT}/repository/files/{SEGMENT}"), update_file, True),
    ("DELETE", re.compile(rf"/projects/{SEGMENT}/repository/files/{SEGMENT}"), delete_file, True),
    ("GET", re.compile(rf"/projects/{SEGMENT}/repository/tags/{SEGMENT}"), get_tag, True),
    ("POST", re.compile(rf"/projects/{SEGMENT}/releases"), create_release, True),
    ("GET", re.compile(rf"/projects/{SEGMENT}/releases/{SEGMENT}"), get_release, True),
    ("PUT", re.compile(rf"/projects/{SEGMENT}/releases/{SEGMENT}"), update_release, True),
    ("DELETE", re.compile(rf"/projects/{SEGMENT}/releases/{SEGMENT}"), delete_release, True),
]


def route(method: str, path: str) -> tuple[Handler, tuple[str, ...], bool] | None:
    """The handler for an encoded path: ``:id`` and ``:file_path`` arrive URL-encoded (``acme%2Fplatform``)."""
    for verb, pattern, handler, authenticated in ROUTES:
        match = pattern.fullmatch(path)
        if verb == method and match:
            return handler, tuple(unquote(group) for group in match.groups()), authenticated
    return None


def redacted(path: str, body: dict[str, Any], state: GitLabState) -> dict[str, Any]:
    """The body as recorded: masked variable values and runner tokens replaced by ``REDACTION``."""
    clean = dict(body)
    if "/variables" in path and "value" in clean:
        flags = ("masked", "masked_and_hidden", "hidden")
        if any(str(clean.get(flag)).lower() == "true" for flag in flags) or _stored_masked(path, state):
            clean["value"] = REDACTION
    if path.endswith("/runners/verify") and "token" in clean:
        clean["token"] = REDACTION
    return clean


def _stored_masked(path: str, state: GitLabState) -> bool:
    match = re.fullmatch(rf"{API_PREFIX}/groups/{SEGMENT}/variables/{SEGMENT}", path)
    if not match:
        return False
    try:
        group = state.group(unquote(match.group(1)))
        return any(v.masked for (k, _), v in state.group_variables(group).items() if k == unquote(match.group(2)))
    except ApiError:
        return False


def _auth_kind(headers: Any) -> str:
    if headers.get("PRIVATE-TOKEN"):
        return "private-token"
    if str(headers.get("Authorization", "")).startswith("Bearer "):
        return "bearer"
    return "none"


def _presented_token(headers: Any) -> str:
    # docs.gitlab.com/ee/api/rest/authentication.html: PRIVATE-TOKEN header, or Authorization: Bearer
    token = headers.get("PRIVATE-TOKEN")
    if token:
        return str(token)
    authorization = str(headers.get("Authorization", ""))
    return authorization.removeprefix("Bearer ") if authorization.startswith("Bearer ") else ""


class GitLabStandIn:
    """A GitLab REST API stand-in on 127.0.0.1; every request is appended to ``record`` as one JSON line."""

    def __init__(self, token: str, record: Path | None = None, port: int = 0) -> None:
        self.state = GitLabState(token)
        self.record = record
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Instance URL (what ``flywheel:gitlab.url`` names); the API is under ``/api/v4/``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}{API_PREFIX}/"

    def start(self) -> GitLabStandIn:
        self._thread = threading.Thread(target=self._server.serve_forever, name="gitlab-stand-in", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> GitLabStandIn:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def handle(self, method: str, raw_path: str, headers: Any, raw_body: bytes) -> Reply:
        split = urlsplit(raw_path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        body = self._body(headers, raw_body)
        with self._lock:
            status, payload = self._dispatch(method, split.path, query, body, headers)
            self._record(method, split.path, query, body, status, _auth_kind(headers))
        return status, payload

    def _dispatch(self, method: str, path: str, query: dict[str, str], body: Any, headers: Any) -> Reply:
        if not isinstance(body, dict):
            return 400, {"error": "the request body is not a JSON object"}
        found = route(method, path.removeprefix(API_PREFIX)) if path.startswith(API_PREFIX + "/") else None
        if found is None:
            return 404, {"error": "404 Not Found"}
        handler, params, authenticated = found
        if authenticated and not secrets.compare_digest(_presented_token(headers), self.state.token):
            return 401, {"message": "401 Unauthorized"}
        try:
            return handler(Call(self.state, self.url, params, query, body))
        except ApiError as error:
            message = error.message
            return error.status, message if isinstance(message, dict) and "error" in message else {"message": message}

    @staticmethod
    def _body(headers: Any, raw: bytes) -> Any:
        if not raw:
            return {}
        if "application/x-www-form-urlencoded" in str(headers.get("Content-Type", "")):
            return dict(parse_qsl(raw.decode(), keep_blank_values=True))
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def _record(self, method: str, path: str, query: dict[str, str], body: Any, status: int, auth: str) -> None:
        if self.record is None:
            return
        entry = {
            "method": method,
            "path": path,
            "query": query,
            "body": redacted(path, body, self.state) if isinstance(body, dict) else None,
            "status": status,
            "auth": auth,
        }
        with self.record.open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry, sort_keys=True) + "\n")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stand_in = self

        class RequestHandler(BaseHTTPRequestHandler):
            server_version = "gitlab-api-stand-in"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, payload = stand_in.handle(self.command, self.path, self.headers, raw)
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status, HTTPStatus(status).phrase)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                return  # the JSONL record is the log; stderr stays quiet

        return RequestHandler


def read_record(path: Path) -> list[dict[str, Any]]:
    """The recorded requests, oldest first."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
