"""Bare git repositories served over git's smart HTTP protocol on loopback, as an in-house git server
would serve them: `git http-backend` run as a CGI program for each request, fetch and push.

    with GitServer(tmp_path / "git") as server:
        server.init_bare("ml-platform.git")
        subprocess.run(["git", "push", server.url("ml-platform.git"), "main"], check=True)

No authentication: anyone who reaches 127.0.0.1:<port> may push (http.receivepack is on). Each
request and what http-backend printed on its standard error are kept in `log` (log_text()).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import yaml

COPY_SIZE = 1 << 16


class GitServerError(RuntimeError):
    pass


class GitServer:
    """Attributes once started: `port`, `root` (the folder of the bare repositories), `log` (lines)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.port = 0
        self.log: list[str] = []
        self._log_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._backend = ""

    def start(self) -> GitServer:
        if self._server is not None:
            raise GitServerError("the git server is already running")
        git = shutil.which("git")
        if git is None:
            raise GitServerError("git is not installed (`make e2e-tools` installs it)")
        exec_path = subprocess.run([git, "--exec-path"], capture_output=True, text=True, check=True).stdout.strip()
        backend = Path(exec_path) / "git-http-backend"
        if not backend.is_file():
            raise GitServerError(f"{backend} not found: the git package provides it")
        self._backend = str(backend)
        self.root.mkdir(parents=True, exist_ok=True)
        server = _Server(("127.0.0.1", 0), _Handler)
        server.git = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name=f"git-http-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> GitServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url(self, name: str) -> str:
        """The clone URL of repository `name` (a folder under root, like ml-platform.git)."""
        if not self.port:
            raise GitServerError("the git server is not started")
        return f"http://127.0.0.1:{self.port}/{name}"

    def init_bare(self, name: str, branch: str = "main") -> Path:
        """An empty bare repository `name` under root, whose HEAD names `branch`."""
        path = self.root / name
        subprocess.run(["git", "init", "--quiet", "--bare", f"--initial-branch={branch}", str(path)], check=True, capture_output=True)
        return path

    def log_text(self) -> str:
        with self._log_lock:
            return "\n".join(self.log)

    def _record(self, line: str) -> None:
        with self._log_lock:
            self.log.append(f"{time.strftime('%H:%M:%S')} {line}")

    def _cgi_environment(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",  # every repository under root, without a git-daemon-export-ok file
            # Only this configuration: not the user's, not the system's. Pushes are allowed without a REMOTE_USER;
            # fetching any reachable commit by its id is allowed, as on the common git hosts.
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_COUNT": "2",
            "GIT_CONFIG_KEY_0": "http.receivepack",
            "GIT_CONFIG_VALUE_0": "true",
            "GIT_CONFIG_KEY_1": "uploadpack.allowReachableSHA1InWant",
            "GIT_CONFIG_VALUE_1": "true",
        }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    git: GitServer


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: each response ends when the connection closes, so http-backend's output is streamed
    # without knowing its length. Git's clients handle it.
    protocol_version = "HTTP/1.0"
    server: _Server

    def do_GET(self) -> None:
        self._run_backend()

    def do_POST(self) -> None:
        self._run_backend()

    def log_message(self, format: str, *args: Any) -> None:
        self.server.git._record(f"{self.address_string()} {format % args}")

    def _run_backend(self) -> None:
        git = self.server.git
        path, _, query = self.path.partition("?")
        with tempfile.TemporaryFile() as body, tempfile.TemporaryFile() as errors:
            try:
                length = self._read_body(body)
            except (ValueError, OSError) as error:
                self.send_error(400, f"unreadable request body: {error}")
                return
            body.seek(0)
            environment = git._cgi_environment()
            environment.update({
                "GATEWAY_INTERFACE": "CGI/1.1",
                "SERVER_PROTOCOL": "HTTP/1.1",
                "SERVER_SOFTWARE": "kfgen-e2e-gitserver",
                "REQUEST_METHOD": self.command,
                "PATH_INFO": urllib.parse.unquote(path),
                "QUERY_STRING": query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(length),
                "REMOTE_ADDR": self.client_address[0],
            })
            # http-backend inflates a gzip body itself when told; git sends the protocol version in a header.
            if self.headers.get("Content-Encoding"):
                environment["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
            if self.headers.get("Git-Protocol"):
                environment["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
            encodings = [e for e in (self.headers.get("Transfer-Encoding"), self.headers.get("Content-Encoding")) if e]
            if encodings:
                git._record(f"{self.command} {path}: {length} bytes of body, sent {' and '.join(encodings)}")
            process = subprocess.Popen([git._backend], stdin=body, stdout=subprocess.PIPE, stderr=errors, env=environment)
            assert process.stdout is not None
            try:
                self._relay(process.stdout)
            finally:
                process.stdout.close()
                code = process.wait()
            errors.seek(0)
            stderr = errors.read().decode(errors="replace").strip()
            if code != 0 or stderr:
                git._record(f"git http-backend {self.command} {path} exited with {code}: {stderr}")

    def _read_body(self, sink: IO[bytes]) -> int:
        """Copies the request body into sink, undoing chunked transfer encoding (git sends large pushes
        that way); returns its length. A Content-Encoding stays for http-backend to undo."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            total = 0
            while True:
                size = int(self.rfile.readline(1024).split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):  # trailers
                        pass
                    return total
                total += _copy(self.rfile, sink, size)
                self.rfile.readline(1024)  # the CRLF after the chunk
        length = int(self.headers.get("Content-Length") or 0)
        return _copy(self.rfile, sink, length)

    def _relay(self, output: IO[bytes]) -> None:
        """Turns the CGI response (headers, a blank line, the body) into an HTTP response."""
        status, reason, headers = 200, "OK", []
        while True:
            line = output.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "status":
                code, _, reason = value.strip().partition(" ")
                status = int(code)
            else:
                headers.append((name.strip(), value.strip()))
        self.send_response(status, reason or None)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        while chunk := output.read(COPY_SIZE):
            self.wfile.write(chunk)


def _copy(source: IO[bytes], sink: IO[bytes], size: int) -> int:
    left = size
    while left > 0:
        chunk = source.read(min(left, COPY_SIZE))
        if not chunk:
            raise ValueError(f"the body ended {left} bytes early")
        sink.write(chunk)
        left -= len(chunk)
    return size


class WorkingRepo:
    """A bare repository on a GitServer and a working clone that commits and pushes `main` to it over HTTP."""

    def __init__(self, server: GitServer, name: str, work: Path):
        server.init_bare(f"{name}.git")
        self.url = server.url(f"{name}.git")
        self.work = work
        self._git("init", "--quiet", "--initial-branch=main")
        self._git("remote", "add", "origin", self.url)

    def _git(self, *args: str) -> str:
        identity = ["-c", "user.name=e2e", "-c", "user.email=e2e@example.com"]
        result = subprocess.run(["git", *identity, *args], cwd=self.work, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise GitServerError(f"git {' '.join(args)} failed: {result.stderr}")
        return result.stdout.strip()

    def push(self, files: dict[str, list[dict[str, Any]]], message: str) -> str:
        """Replaces the tree with `files` (path -> objects), commits, pushes main; returns the commit."""
        self._git("rm", "-r", "--quiet", "--ignore-unmatch", ".")
        for path, objects in files.items():
            target = self.work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(yaml.safe_dump_all(objects, sort_keys=False), encoding="utf-8")
        self._git("add", "--all")
        self._git("commit", "--quiet", "-m", message)
        self._git("push", "--quiet", "origin", "main")
        return self._git("rev-parse", "HEAD")
