"""Running the real kustomize: the pinned binary for one-off builds, a pool of workers for many.

A build of the platform runs kustomize on some fifty directories. The binary parses its built-in
OpenAPI schema on every start, about a tenth of a second of CPU, more than most overlays take to
build. tools/kustomize-worker runs the same build command of the same kustomize release on many
directories in one process (its output is tested byte for byte against the binary's); the Builder
keeps one worker per concurrent build.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
import threading
from pathlib import Path

from .errors import BuildError
from .tools import find_tool, go_tool_environment

KUSTOMIZE_VERSION = "v5.8.1"


def find_kustomize(project_root: Path) -> str:
    """The pinned kustomize binary."""
    return find_tool("kustomize", project_root, KUSTOMIZE_VERSION)


def find_kustomize_worker(project_root: Path) -> str:
    """tools/kustomize-worker, built against the pinned kustomize release by `make tools`."""
    return find_tool("kustomize-worker", project_root, KUSTOMIZE_VERSION)


def _failure(directory: Path, message: str) -> BuildError:
    lines = [line for line in message.splitlines() if line.strip() and not line.startswith("# Warning")]
    return BuildError(f"kustomize build {directory} failed:\n" + "\n".join(lines[-20:]))


def kustomize_build(kustomize: str, directory: Path) -> str:
    """`kustomize build directory` with the binary."""
    result = subprocess.run([kustomize, "build", str(directory)], capture_output=True, text=True)
    if result.returncode != 0:
        raise _failure(directory, result.stderr)
    return result.stdout


class _Worker:
    """One kustomize-worker process: a directory per line in, "ok N" or "error N" and N bytes out."""

    def __init__(self, program: str):
        # Its stderr goes to a file, not a pipe nobody reads: a crash report must not block it.
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close(), with the process)
        self.process = subprocess.Popen([program], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                        env=go_tool_environment())

    def build(self, directory: Path) -> str:
        path = str(directory)
        if "\n" in path:
            raise BuildError(f"cannot build {path!r}: a newline in a path")
        assert self.process.stdin is not None and self.process.stdout is not None  # both are pipes
        try:
            self.process.stdin.write(path.encode() + b"\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            pass  # reported below, from the missing answer and the worker's stderr
        header = self.process.stdout.readline().split()
        if len(header) != 2 or header[0] not in (b"ok", b"error") or not header[1].isdigit():
            raise BuildError(f"kustomize-worker stopped while building {path}: {self.crash_report()}")
        body = self.process.stdout.read(int(header[1])).decode("utf-8")
        if header[0] == b"error":
            raise _failure(directory, "Error: " + body)
        return body

    def crash_report(self) -> str:
        self.process.kill()
        self.process.wait()
        self.stderr.seek(0)
        return self.stderr.read().decode("utf-8", "replace").strip()[-2000:] or f"exit status {self.process.returncode}"

    def close(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None  # both are pipes
        with contextlib.suppress(BrokenPipeError):
            self.process.stdin.close()  # the worker exits at the end of its input
        self.process.wait()
        self.process.stdout.close()
        self.stderr.close()


class KustomizePool:
    """kustomize-worker processes shared by threads: each build takes an idle worker or starts one,
    so there are never more workers than builds running at once."""

    def __init__(self, program: str, ready: int = 0):
        """ready: workers to start now, so that their start-up (about a fifth of a second, most of it
        parsing kustomize's built-in schema) overlaps whatever the caller does before its first build."""
        self.program = program
        self._idle: list[_Worker] = [_Worker(program) for _ in range(ready)]
        self._all: list[_Worker] = list(self._idle)
        self._lock = threading.Lock()
        self._closed = False

    def build(self, directory: Path) -> str:
        with self._lock:
            if self._closed:
                raise BuildError(f"cannot build {directory}: the kustomize workers have stopped")
            worker = self._idle.pop() if self._idle else None
        if worker is None:
            worker = _Worker(self.program)
            with self._lock:
                self._all.append(worker)
        try:
            return worker.build(directory)
        finally:
            if worker.process.poll() is None:  # a failed build leaves the worker usable; a crashed one is not
                with self._lock:
                    self._idle.append(worker)

    def close(self) -> None:
        with self._lock:
            workers, self._all, self._idle, self._closed = self._all, [], [], True
        for worker in workers:
            worker.close()
