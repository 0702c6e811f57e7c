"""A real Kubernetes control plane for the tests: etcd and kube-apiserver on loopback, nothing else.

`make controlplane` builds both binaries (tools/apiserver, tools/etcd) into .tools/bin; the environment
variables KFGEN_KUBE_APISERVER and KFGEN_ETCD override where they are found. There is no
controller-manager, scheduler or kubelet: objects are stored, validated, defaulted and admitted (RBAC,
built-in admission, CRD schemas; the apiextensions controllers that make a CRD Established run inside
kube-apiserver), but no Pod ever runs, no namespace is finalized and no ServiceAccount is created.

    with ControlPlane() as cp:
        api = cp.api_client()                          # kubernetes.client.ApiClient, as the admin
        subprocess.run(["kubectl", "--kubeconfig", cp.kubeconfig, "get", "ns"])

Authentication: a static bearer token (`token`), random per start, for the user `kfgen-admin` in the
group `system:masters`, which RBAC lets do anything, impersonation included (`api_client(as_user=..., as_group=...)`).
The serving certificate is the one kube-apiserver makes for itself in its --cert-dir; its CA is in
`ca_file` and embedded in the kubeconfig.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
TOOLS = PROJECT / ".tools" / "bin"

ADMIN_USER = "kfgen-admin"
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"


class ControlPlaneError(RuntimeError):
    pass


def binary(env: str, name: str) -> Path:
    """A control-plane binary: $env if set, else .tools/bin/<name>; ControlPlaneError when it is missing."""
    path = Path(os.environ.get(env) or TOOLS / name)
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ControlPlaneError(f"{name} not found at {path} (set by {env} or .tools/bin): run `make controlplane` to build it")
    return path


def _free_ports(count: int) -> list[int]:
    """Ports the kernel hands out now; all are held open together so that they differ."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _die_with_parent() -> None:
    """In the child before exec: be killed when the test process dies, so no server outlives a killed run."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


class _AddressInUse(Exception):
    pass


class ControlPlane:
    """etcd and kube-apiserver in a temporary folder. Attributes once started:

    kubeconfig  path (str) of a kubeconfig for the admin (context `kfgen-test`), usable by the Python client and kubectl
    server      the API server's URL, https://127.0.0.1:<port>
    token       the admin's bearer token (group system:masters)
    ca_file     PEM of the CA that signed the serving certificate
    etcd_url    etcd's client URL, http://127.0.0.1:<port>
    dir         the temporary folder: etcd's data, certificates, keys and the logs etcd.log and kube-apiserver.log
    """

    def __init__(
        self,
        *,
        apiserver_flags: list[str] | None = None,
        disabled_admission_plugins: tuple[str, ...] = ("ServiceAccount",),
        startup_timeout: float = 90.0,
        keep_dir: bool = False,
    ):
        self.apiserver_flags = list(apiserver_flags or [])
        # ServiceAccount by default: no controller-manager creates the `default` ServiceAccounts that it
        # requires of pods. A cluster that runs one (tests/e2e/cluster.py) keeps it and names others.
        self.disabled_admission_plugins = tuple(disabled_admission_plugins)
        self.startup_timeout = startup_timeout
        self.keep_dir = keep_dir or bool(os.environ.get("KFGEN_CONTROLPLANE_KEEP"))
        self.dir: Path | None = None
        self.kubeconfig = ""
        self.server = ""
        self.token = ""
        self.ca_file = ""
        self.etcd_url = ""
        self._processes: dict[str, subprocess.Popen] = {}

    # ---- lifecycle

    def start(self) -> ControlPlane:
        if self._processes:
            raise ControlPlaneError("the control plane is already running")
        apiserver, etcd = binary("KFGEN_KUBE_APISERVER", "kube-apiserver"), binary("KFGEN_ETCD", "etcd")
        self.dir = Path(tempfile.mkdtemp(prefix="kfgen-controlplane-"))
        atexit.register(self.stop)
        try:
            self._write_credentials()
            for attempt in range(3):  # another process may take a free port between choosing and binding it
                try:
                    self._start_processes(apiserver, etcd)
                    break
                except _AddressInUse:
                    self._terminate()
                    if attempt == 2:
                        raise ControlPlaneError("control plane: the ports chosen were taken three times in a row") from None
            self._write_kubeconfig()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Terminates both servers (their process groups) and removes the temporary folder. Safe to call twice."""
        self._terminate()
        if self.dir is not None and not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        atexit.unregister(self.stop)

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- clients

    def api_client(self, as_user: str | None = None, as_group: str | None = None):
        """A kubernetes.client.ApiClient from the kubeconfig; with as_user (and as_group), its requests impersonate them."""
        from kubernetes import config

        client = config.new_client_from_config(config_file=self.kubeconfig)
        if as_user:
            client.set_default_header("Impersonate-User", as_user)
            if as_group:
                client.set_default_header("Impersonate-Group", as_group)
        return client

    def request(self, path: str, method: str = "GET", body: Any = None, timeout: float = 10.0) -> tuple[int, bytes]:
        """A raw request as the admin, for paths that no typed client has; returns (status, body)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        context = ssl.create_default_context(cafile=self.ca_file)
        try:
            with urllib.request.urlopen(req, context=context, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    # ---- internals

    def _write_credentials(self) -> None:
        assert self.dir is not None
        self.token = secrets.token_urlsafe(32)
        (self.dir / "tokens.csv").write_text(f'{self.token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n', encoding="utf-8")
        # The key pair that signs and verifies service-account tokens.
        for argv in (
            ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "sa.key"],
            ["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"],
        ):
            result = subprocess.run(["openssl", *argv], cwd=self.dir, capture_output=True, text=True)
            if result.returncode != 0:
                raise ControlPlaneError(f"openssl {argv[0]} failed to make the service-account key pair: {result.stderr.strip()}")

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        assert self.dir is not None
        with open(self.dir / f"{name}.log", "wb") as log:
            process = subprocess.Popen(
                argv,
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, ended as one
                preexec_fn=_die_with_parent,
            )
        self._processes[name] = process
        return process

    def _start_processes(self, apiserver: Path, etcd: Path) -> None:
        assert self.dir is not None
        client_port, peer_port, secure_port = _free_ports(3)
        self.etcd_url = f"http://127.0.0.1:{client_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        data_dir = self.dir / "etcd"
        shutil.rmtree(data_dir, ignore_errors=True)
        self._spawn("etcd", [
            str(etcd),
            "--name=kfgen",
            f"--data-dir={data_dir}",
            f"--listen-client-urls={self.etcd_url}",
            f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=kfgen={peer_url}",
            "--initial-cluster-state=new",
            "--unsafe-no-fsync",  # test data: durability is not needed, speed is
            "--log-level=warn",
        ])
        self.server = f"https://127.0.0.1:{secure_port}"
        certs = self.dir / "certs"
        self._spawn("kube-apiserver", [
            str(apiserver),
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={secure_port}",
            f"--cert-dir={certs}",  # a self-signed serving certificate (and its CA) for 127.0.0.1
            f"--token-auth-file={self.dir / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={self.dir / 'sa.pub'}",
            f"--service-account-signing-key-file={self.dir / 'sa.key'}",
            f"--disable-admission-plugins={','.join(self.disabled_admission_plugins)}",
            "--allow-privileged=true",
            *self.apiserver_flags,
        ])
        self._wait_ready(certs / "apiserver.crt")

    def _wait_ready(self, serving_cert: Path) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last = "no answer yet"
        while True:
            for name, process in self._processes.items():
                if process.poll() is not None:
                    assert self.dir is not None
                    if "address already in use" in _tail(self.dir / f"{name}.log", 50):
                        raise _AddressInUse()
                    raise ControlPlaneError(f"{name} exited with code {process.returncode} while starting\n{self._logs()}")
            if serving_cert.exists() and not self.ca_file:
                self.ca_file = self._extract_ca(serving_cert)
            if self.ca_file:
                try:
                    status, body = self.request("/readyz", timeout=5)
                    if status == 200:
                        return
                    last = f"/readyz: {status} {body.decode(errors='replace')[-2000:]}"
                except OSError as error:  # not listening yet, or closing connections while it starts
                    last = f"/readyz: {error}"
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"kube-apiserver not ready after {self.startup_timeout:.0f}s ({last})\n{self._logs()}")
            time.sleep(0.1)

    def _extract_ca(self, serving_cert: Path) -> str:
        """kube-apiserver writes its serving certificate followed by the CA that signed it; the CA is the last block."""
        assert self.dir is not None
        for _ in range(50):  # the file may be seen before it is completely written
            blocks = [b for b in serving_cert.read_text(encoding="ascii").split("-----END CERTIFICATE-----") if "BEGIN CERTIFICATE" in b]
            if len(blocks) >= 2:
                ca = self.dir / "ca.crt"
                ca.write_text(blocks[-1].strip() + "\n-----END CERTIFICATE-----\n", encoding="ascii")
                return str(ca)
            time.sleep(0.05)
        raise ControlPlaneError(f"{serving_cert} has no CA certificate after the serving certificate")

    def _write_kubeconfig(self) -> None:
        assert self.dir is not None
        ca_data = base64.b64encode(Path(self.ca_file).read_bytes()).decode()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kfgen-test", "cluster": {"server": self.server, "certificate-authority-data": ca_data}}],
            "users": [{"name": ADMIN_USER, "user": {"token": self.token}}],
            "contexts": [{"name": "kfgen-test", "context": {"cluster": "kfgen-test", "user": ADMIN_USER}}],
            "current-context": "kfgen-test",
            "preferences": {},
        }
        path = self.dir / "kubeconfig"
        path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")  # JSON is YAML: both clients read it
        path.chmod(0o600)
        self.kubeconfig = str(path)

    def _logs(self) -> str:
        assert self.dir is not None
        return "\n".join(f"--- last lines of {name}.log:\n{_tail(self.dir / f'{name}.log')}" for name in ("etcd", "kube-apiserver"))

    def _terminate(self) -> None:
        """The API server first (it closes its etcd connections), then etcd; SIGTERM, then SIGKILL after 10 s."""
        for name in ("kube-apiserver", "etcd"):
            process = self._processes.pop(name, None)
            if process is None:
                continue
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
