"""A real HTTP server on 127.0.0.1 that speaks the Hugging Face Hub's file-resolve protocol.

``HEAD``/``GET /{org}/{repo}/resolve/{revision}/{path}`` answer with ``X-Repo-Commit``, ``ETag`` (sha256
for LFS-style files, the git blob sha1 for small ones, as the Hub does) and ``Content-Length``; unknown
repos, revisions and files answer 404 with the Hub's ``X-Error-Code``. Tests can tamper with a file's
content after its ETag was computed, or make the server stall (before answering, or mid-download), for a
number of seconds or until the test releases it. ``stop()`` ends every stall, so no answer outlives the test.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".onnx")
HOLD_LIMIT = 600.0  # a held body is released after this long even if the test never releases it (a hang)


def _etag(name: str, data: bytes) -> str:
    if name.endswith(LFS_SUFFIXES):
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()


@dataclass
class Repo:
    commit: str
    files: dict[str, bytes]
    etags: dict[str, str] = field(default_factory=dict)


class FakeHub:
    """The repositories the server knows, and a log of the requests it answered."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.clients: list[tuple[str, str, str]] = []  # (method, path, User-Agent): which process asked
        self.stall_seconds = 0.0  # before answering any request
        self.body_stall_seconds = 0.0  # after a GET's headers, before its body (a download that stops)
        self.hold_bodies: threading.Event | None = None  # if set: GET bodies wait until this event is set
        self._stopped = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    def add(self, repo_id: str, files: dict[str, bytes], commit: str | None = None) -> str:
        commit = commit or hashlib.sha1(repo_id.encode() + b"".join(sorted(files.values()))).hexdigest()
        self.repos[repo_id] = Repo(commit, dict(files), {n: _etag(n, d) for n, d in files.items()})
        return commit

    def tamper(self, repo_id: str, filename: str, data: bytes) -> None:
        """Serve different bytes under the original ETag (a corrupted mirror or a man in the middle)."""
        self.repos[repo_id].files[filename] = data

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeHub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def handle(self) -> None:
                try:
                    super().handle()
                except (BrokenPipeError, ConnectionResetError):  # a client that timed out and left
                    pass

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def do_GET(self) -> None:
                self._answer(body=True)

            def _answer(self, body: bool) -> None:
                hub.clients.append((self.command, self.path, self.headers.get("User-Agent", "")))
                hub.requests.append((self.command, self.path))
                if hub.stall_seconds:
                    hub._stopped.wait(hub.stall_seconds)
                parts = unquote(self.path.split("?")[0]).lstrip("/").split("/")
                if len(parts) < 5 or parts[2] != "resolve":
                    return self._error(404, "RepoNotFound", "not a resolve URL")
                repo_id, revision, filename = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
                repo = hub.repos.get(repo_id)
                if repo is None:
                    return self._error(401, "RepoNotFound", f"Repository Not Found for url: {self.path}")
                if revision not in ("main", repo.commit):
                    return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
                if filename not in repo.files:
                    return self._error(404, "EntryNotFound", f"{filename} does not exist on {revision}")
                data = repo.files[filename]
                self.send_response(200)
                self.send_header("X-Repo-Commit", repo.commit)
                self.send_header("ETag", f'"{repo.etags[filename]}"')
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                if body:
                    if hub.body_stall_seconds or hub.hold_bodies is not None:
                        self.wfile.flush()
                    if hub.body_stall_seconds:
                        hub._stopped.wait(hub.body_stall_seconds)
                    if hub.hold_bodies is not None:
                        hub.hold_bodies.wait(HOLD_LIMIT)
                    self.wfile.write(data)

            def _error(self, status: int, code: str, message: str) -> None:
                payload = f'{{"error": "{message}"}}'.encode()
                self.send_response(status)
                self.send_header("X-Error-Code", code)
                self.send_header("X-Error-Message", message)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command == "GET":
                    self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self.hold_bodies is not None:
            self.hold_bodies.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
