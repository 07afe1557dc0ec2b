"""A recording stand-in for GitHub on loopback: the REST endpoints the workflows call (statuses, pull requests,
issues and their comments and labels, releases, environments, the artifacts of a run) and the Actions artifact
service that upload-artifact and download-artifact talk to. It keeps what GitHub would keep, answers what the
workflows ask, and records every call (method, path, query, JSON body, which token) in `calls`."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import itertools
import json
import re
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

TWIRP = "/twirp/github.actions.results.api.v1.ArtifactService/"


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    holder: str | None
    """Who holds the token the call was made with (FakeGitHub.tokens), or the unknown token itself."""


@dataclass
class Artifact:
    id: int
    run_id: str
    name: str
    blocks: dict[str, bytes] = field(default_factory=dict)
    data: bytes = b""
    digest: str = ""
    finalized: bool = False


class Stop(Exception):
    """An answer other than 200: status and JSON body."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class FakeGitHub:
    """One repository's GitHub. `remote` is the bare repository that stands in for its git remote."""

    repository: str = "acme/template"
    remote: Path | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    """token -> who holds it (e.g. "github.token", "RETRAIN_TOKEN"); a request with another token gets 401."""
    calls: list[Call] = field(default_factory=list)
    statuses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Issues and pull requests (one numbering, as on GitHub); each with its `comments` bodies."""
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)
    releases: dict[str, dict[str, Any]] = field(default_factory=dict)
    environments: dict[str, dict[str, Any]] = field(default_factory=dict)
    artifacts: list[Artifact] = field(default_factory=list)
    attestations: list[dict[str, Any]] = field(default_factory=list)
    standins: list[dict[str, Any]] = field(default_factory=list)
    """What the stand-in executables (cml, docker) reported about their runs."""
    url: str = ""
    _numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1000))
    _runs: Iterator[int] = field(default_factory=lambda: itertools.count(101))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- what the tests set up and read -------------------------------------------------------------------------
    def token(self, holder: str) -> str:
        token = f"ghs_{hashlib.sha256(holder.encode()).hexdigest()[:32]}"
        self.tokens[token] = holder
        return token

    def new_run(self) -> int:
        return next(self._runs)

    def open_pull(self, *, head: str, sha: str, base: str = "main", title: str = "A PR", fork: str = "") -> int:
        number = next(self._numbers)
        self.issues[number] = {
            "number": number,
            "title": title,
            "body": "",
            "state": "open",
            "labels": [],
            "comments": [],
            "pull_request": {"head": {"ref": head, "sha": sha, "repo": fork or self.repository}, "base": {"ref": base}},
        }
        return number

    def pulls(self) -> list[dict[str, Any]]:
        return [i for i in self.issues.values() if "pull_request" in i]

    def open_issues(self, label: str) -> list[dict[str, Any]]:
        return [
            i for i in self.issues.values() if "pull_request" not in i and i["state"] == "open" and label in i["labels"]
        ]

    def writes(self) -> list[Call]:
        """The calls that would change something on GitHub (artifact uploads aside)."""
        return [c for c in self.calls if c.method != "GET" and not c.path.startswith(("/twirp/", "/_"))]

    # --- the server --------------------------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict[str, str], body: Any, token: str | None) -> Any:
        if token is not None and token not in self.tokens:
            raise Stop(401, "Bad credentials")
        prefix = f"/repos/{self.repository}/"
        if not path.startswith(prefix):
            raise Stop(404, "Not Found")
        rest = path[len(prefix) :]
        for pattern, handler in ROUTES:
            found = re.fullmatch(pattern, f"{method} {rest}")
            if found:
                return handler(self, body or {}, query, *found.groups())
        raise Stop(404, f"the stand-in does not answer {method} {path}")

    def pull(self, _: Any, __: dict[str, str], number: str) -> dict[str, Any]:
        issue = self.issues.get(int(number))
        if issue is None or "pull_request" not in issue:
            raise Stop(404, "Not Found")
        return {"number": issue["number"], "state": issue["state"], "title": issue["title"], **issue["pull_request"]}

    def create_pull(self, body: dict[str, Any], _: dict[str, str]) -> dict[str, Any]:
        head, base = str(body.get("head", "")), str(body.get("base", ""))
        sha = self._remote_sha(head)
        if sha is None:
            raise Stop(422, f"head {head!r} is not a branch of {self.repository}")
        number = self.open_pull(head=head, sha=sha, base=base, title=str(body.get("title", "")))
        self.issues[number]["body"] = str(body.get("body", ""))
        return {"number": number, "html_url": f"https://github.com/{self.repository}/pull/{number}"}

    def status(self, body: dict[str, Any], _: dict[str, str], sha: str) -> dict[str, Any]:
        if body.get("state") not in {"error", "failure", "pending", "success"}:
            raise Stop(422, "state is not one of error, failure, pending, success")
        self.statuses.setdefault(sha, []).append(dict(body))
        return {"id": next(self._ids), **body}

    def list_issues(self, _: Any, query: dict[str, str]) -> list[dict[str, Any]]:
        wanted = {name for name in query.get("labels", "").split(",") if name}
        state = query.get("state", "open")
        found = [
            i for i in self.issues.values() if (state == "all" or i["state"] == state) and wanted <= set(i["labels"])
        ]
        return [{**i, "labels": [{"name": name} for name in i["labels"]]} for i in found]

    def create_issue(self, body: dict[str, Any], _: dict[str, str]) -> dict[str, Any]:
        unknown = [name for name in body.get("labels", []) if name not in self.labels]
        if unknown:
            raise Stop(422, f"unknown labels {unknown}")
        number = next(self._numbers)
        self.issues[number] = {
            "number": number,
            "title": str(body.get("title", "")),
            "body": str(body.get("body", "")),
            "state": "open",
            "labels": list(body.get("labels", [])),
            "comments": [],
        }
        return {"number": number}

    def comment(self, body: dict[str, Any], _: dict[str, str], number: str) -> dict[str, Any]:
        issue = self.issues.get(int(number))
        if issue is None:
            raise Stop(404, "Not Found")
        comment = {"id": next(self._ids), "body": str(body.get("body", ""))}
        issue["comments"].append(comment)
        return comment

    def list_comments(self, _: Any, __: dict[str, str], number: str) -> list[dict[str, Any]]:
        issue = self.issues.get(int(number))
        if issue is None:
            raise Stop(404, "Not Found")
        return list(issue["comments"])

    def edit_comment(self, body: dict[str, Any], _: dict[str, str], comment_id: str) -> dict[str, Any]:
        for issue in self.issues.values():
            for comment in issue["comments"]:
                if comment["id"] == int(comment_id):
                    comment["body"] = str(body.get("body", ""))
                    return comment
        raise Stop(404, "Not Found")

    def edit_issue(self, body: dict[str, Any], _: dict[str, str], number: str) -> dict[str, Any]:
        issue = self.issues.get(int(number))
        if issue is None:
            raise Stop(404, "Not Found")
        issue.update({k: v for k, v in body.items() if k in {"state", "title", "body"}})
        return {"number": issue["number"], "state": issue["state"]}

    def create_label(self, body: dict[str, Any], _: dict[str, str]) -> dict[str, Any]:
        name = str(body.get("name", ""))
        if name in self.labels:
            raise Stop(422, "Validation Failed: already_exists")
        self.labels[name] = dict(body)
        return dict(body)

    def release_by_tag(self, _: Any, __: dict[str, str], tag: str) -> dict[str, Any]:
        if tag not in self.releases:
            raise Stop(404, "Not Found")
        return self.releases[tag]

    def create_release(self, body: dict[str, Any], _: dict[str, str]) -> dict[str, Any]:
        tag = str(body.get("tag_name", ""))
        if tag in self.releases:
            raise Stop(422, "Validation Failed: already_exists")
        self.releases[tag] = {**body, "id": next(self._ids), "html_url": f"https://github.com/releases/{tag}"}
        return self.releases[tag]

    def environment(self, _: Any, __: dict[str, str], name: str) -> dict[str, Any]:
        if name not in self.environments:
            raise Stop(404, "Not Found")
        return {"name": name, **self.environments[name]}

    def attest(self, body: dict[str, Any], _: dict[str, str]) -> dict[str, Any]:
        self.attestations.append(dict(body))
        return {"id": next(self._ids)}

    def run_artifacts(self, _: Any, query: dict[str, str], run_id: str) -> dict[str, Any]:
        found = [a for a in self.artifacts if a.run_id == run_id and a.finalized]
        if query.get("name"):
            found = [a for a in found if a.name == query["name"]]
        listed = [
            {"id": a.id, "name": a.name, "size_in_bytes": len(a.data), "digest": a.digest, "expired": False}
            for a in found
        ]
        return {"total_count": len(listed), "artifacts": listed}

    def artifact_zip(self, _: Any, __: dict[str, str], artifact_id: str) -> Any:
        raise Redirect(f"{self.url}/_download/{int(artifact_id)}")

    def _remote_sha(self, branch: str) -> str | None:
        if self.remote is None:
            return None
        found = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"],
            cwd=self.remote,
            capture_output=True,
            text=True,
        )
        return found.stdout.strip() or None

    # --- the artifact service (twirp, JSON) and its blob storage ------------------------------------------------
    def twirp(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        run_id = str(_field(body, "workflow_run_backend_id"))
        name = str(_field(body, "name") or "")
        if method == "CreateArtifact":
            artifact = Artifact(next(self._ids), run_id, name)
            self.artifacts = [a for a in self.artifacts if not (a.run_id == run_id and a.name == name)]
            self.artifacts.append(artifact)
            return {"ok": True, "signedUploadUrl": f"{self.url}/_upload/{artifact.id}?sig=standin"}
        if method == "FinalizeArtifact":
            artifact = self._artifact(run_id, name)
            artifact.finalized = True
            artifact.digest = str(_field(body, "hash") or "")
            return {"ok": True, "artifactId": str(artifact.id)}
        if method == "ListArtifacts":
            wanted_name, wanted_id = _field(body, "name_filter"), _field(body, "id_filter")
            found = [
                a
                for a in self.artifacts
                if a.run_id == run_id
                and a.finalized
                and (not wanted_name or a.name == wanted_name)
                and (not wanted_id or a.id == int(wanted_id))
            ]
            now = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
            return {
                "artifacts": [
                    {
                        "workflowRunBackendId": run_id,
                        "workflowJobRunBackendId": run_id,
                        "databaseId": str(a.id),
                        "name": a.name,
                        "size": str(len(a.data)),
                        "createdAt": now,
                        "digest": a.digest,
                    }
                    for a in found
                ]
            }
        if method == "GetSignedArtifactURL":
            return {"signedUrl": f"{self.url}/_download/{self._artifact(run_id, name).id}"}
        if method == "DeleteArtifact":
            artifact = self._artifact(run_id, name)
            self.artifacts.remove(artifact)
            return {"ok": True, "artifactId": str(artifact.id)}
        raise Stop(404, f"no twirp method {method}")

    def _artifact(self, run_id: str, name: str) -> Artifact:
        for artifact in self.artifacts:
            if artifact.run_id == run_id and artifact.name == name:
                return artifact
        raise Stop(404, f"no artifact {name!r} in run {run_id}")

    def upload(self, artifact_id: int, query: dict[str, str], data: bytes) -> None:
        artifact = next((a for a in self.artifacts if a.id == artifact_id), None)
        if artifact is None:
            raise Stop(404, "no such upload")
        if query.get("comp") == "block":
            artifact.blocks[query["blockid"]] = data
        elif query.get("comp") == "blocklist":
            order = re.findall(r"<(?:Latest|Uncommitted|Committed)>([^<]+)</", data.decode())
            artifact.data = b"".join(artifact.blocks[block] for block in order)
        else:
            artifact.data = data

    def download(self, artifact_id: int) -> bytes:
        for artifact in self.artifacts:
            if artifact.id == artifact_id:
                return artifact.data
        raise Stop(404, "Not Found")


class Redirect(Exception):
    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


def _field(body: dict[str, Any], snake: str) -> Any:
    """A protobuf JSON field by its proto name or its lowerCamelCase JSON name; wrappers are plain values."""
    camel = re.sub(r"_([a-z])", lambda m: m[1].upper(), snake)
    value = body.get(snake, body.get(camel))
    return value.get("value") if isinstance(value, dict) else value


R = r"([^/]+)"
ROUTES: list[tuple[str, Any]] = [
    (rf"GET pulls/{R}", FakeGitHub.pull),
    (r"POST pulls", FakeGitHub.create_pull),
    (rf"POST statuses/{R}", FakeGitHub.status),
    (r"GET issues", FakeGitHub.list_issues),
    (r"POST issues", FakeGitHub.create_issue),
    (rf"GET issues/{R}/comments", FakeGitHub.list_comments),
    (rf"POST issues/{R}/comments", FakeGitHub.comment),
    (rf"PATCH issues/comments/{R}", FakeGitHub.edit_comment),
    (rf"PATCH issues/{R}", FakeGitHub.edit_issue),
    (r"POST labels", FakeGitHub.create_label),
    (rf"GET releases/tags/{R}", FakeGitHub.release_by_tag),
    (r"POST releases", FakeGitHub.create_release),
    (rf"GET environments/{R}", FakeGitHub.environment),
    (r"POST attestations", FakeGitHub.attest),
    (rf"GET actions/runs/{R}/artifacts", FakeGitHub.run_artifacts),
    (rf"GET actions/artifacts/{R}/zip", FakeGitHub.artifact_zip),
]


def _handler(github: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: Any) -> None:
            pass

        def _answer(self, status: int, data: bytes, content_type: str = "application/json", **headers: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key.replace("_", "-"), value)
            self.end_headers()
            self.wfile.write(data)

        def _serve(self, method: str) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(parsed.query))
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            auth = self.headers.get("Authorization", "")
            token = auth.split(" ", 1)[1] if " " in auth else None
            path = urllib.parse.unquote(parsed.path)
            try:
                body = json.loads(raw) if raw and "json" in self.headers.get("Content-Type", "json") else None
            except ValueError:
                body = None
            with github._lock:
                github.calls.append(Call(method, path, query, body, github.tokens.get(token or "", token)))
                try:
                    if path.startswith(TWIRP):
                        answer = github.twirp(path[len(TWIRP) :], body or {})
                    elif path.startswith("/_upload/"):
                        github.upload(int(path.rsplit("/", 1)[1]), query, raw)
                        return self._answer(201, b"", "text/plain", ETag='"standin"', Last_Modified="now")
                    elif path.startswith("/_download/"):
                        return self._answer(200, github.download(int(path.rsplit("/", 1)[1])), "application/zip")
                    elif path == "/_standins":
                        github.standins.append(body or {})
                        answer = {"ok": True}
                    else:
                        answer = github.handle(method, path, query, body, token)
                except Stop as stop:
                    return self._answer(stop.status, json.dumps({"message": stop.message}).encode())
                except Redirect as redirect:
                    return self._answer(302, b"", "text/plain", Location=redirect.location)
            self._answer(201 if method == "POST" else 200, json.dumps(answer).encode())

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PATCH(self) -> None:
            self._serve("PATCH")

        def do_PUT(self) -> None:
            self._serve("PUT")

    return Handler


@contextmanager
def serving(github: FakeGitHub) -> Iterator[FakeGitHub]:
    """Serve `github` on a free loopback port (github.url) until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(github))
    github.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield github
    finally:
        server.shutdown()
        server.server_close()


def runtime_token(run_id: int) -> str:
    """An ACTIONS_RUNTIME_TOKEN as the artifact client reads it (a JWT whose scope names the run); unsigned."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part({'scp': f'Actions.Results:{run_id}:{run_id}'})}.standin"
