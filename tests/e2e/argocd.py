"""Argo CD's application controller and repo server, run as processes against an e2e `Cluster`.

    with Cluster() as cluster, ArgoCD(cluster) as argocd:
        cluster.kubectl("apply", "-f", "application.yaml")
        argocd.refresh("my-app")                      # hard refresh: re-read git now
        argocd.wait_for_app("my-app", sync="Synced", health="Healthy")

What a real installation has and this one has too: Argo CD's CRDs (from the source cache), the namespace
`argocd` with `argocd-cm`, `argocd-secret` and `argocd-rbac-cm` (labelled
app.kubernetes.io/part-of=argocd, without which Argo CD's settings manager does not see them), the
`default` AppProject, a redis, the repo server and the application controller. No API server, UI,
ApplicationSet controller or Dex: nothing in the GitOps loop needs them.

How it differs from a Deployment in a cluster, and why:
- ARGOCD_FAKE_IN_CLUSTER=true makes the in-cluster destination (https://kubernetes.default.svc) use
  KUBECONFIG instead of a pod's service-account token.
- The controller talks to the repo server in plaintext on loopback (`--repo-server-plaintext`, and the
  repo server `--disable-tls`), as a sidecar-free pod network would need certificates for.
- Resync and cache periods are seconds, not minutes, so that tests see a git push promptly; see
  `ArgoCDSettings`.
- The binaries: .tools/bin/argocd (tools/argocd, `make e2e-tools`) and redis-server (Debian); overridden
  by KFGEN_ARGOCD and KFGEN_REDIS_SERVER. The repo server runs `kustomize` from .tools/bin
  (KFGEN_KUSTOMIZE overrides it) and `git` from the system.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controlplane import _free_ports
from e2e.cluster import Cluster, ClusterError, ClusterTimeout, http_ok, tool

PROJECT = Path(__file__).resolve().parents[2]
UPSTREAM = PROJECT.parent / "shared" / "upstream"
CRDS = UPSTREAM / "github.com" / "argoproj" / "argo-cd" / "v3.5.1" / "manifests" / "crds"
# The ApplicationSet CRD is left out: no ApplicationSet controller runs here.
CRD_FILES = ("application-crd.yaml", "appproject-crd.yaml")

NAMESPACE = "argocd"
PART_OF = {"app.kubernetes.io/part-of": "argocd"}
REFRESH_ANNOTATION = "argocd.argoproj.io/refresh"


class ArgoCDError(ClusterError):
    pass


@dataclass(frozen=True)
class ArgoCDSettings:
    """What differs from Argo CD's defaults, chosen for tests that wait on the controller."""

    # Seconds between two comparisons of every Application with git (default 120 s, with up to 60 s jitter).
    app_resync: int = 10
    # How long the repo server trusts a branch's resolved commit (default: 3 minutes). Past it, a comparison
    # resolves the branch again, so a push is seen within app_resync + this without a refresh.
    revision_cache_expiration: str = "5s"
    status_processors: int = 4
    operation_processors: int = 2
    # Self-heal retries back off from 1 s, by 2, up to 10 s (default: 2 s, by 3, up to 300 s), so that a test
    # that edits an object twice does not wait minutes for the second heal.
    self_heal_backoff_seconds: int = 1
    self_heal_backoff_factor: int = 2
    self_heal_backoff_cap_seconds: int = 10
    # Each resource's health in the Application's status (Argo CD 3 keeps it in redis only), so that tests
    # and failure messages can say which object is unhealthy and why.
    persist_resource_health: bool = True
    # Extra data for argocd-cm (resource customizations, exclusions...), as a user would set it.
    config: dict[str, str] = field(default_factory=dict)
    log_level: str = "info"


def _system_binary(env: str, name: str) -> Path:
    """A binary from a Debian package: $env if set, else the one on PATH."""
    found = os.environ.get(env) or shutil.which(name)
    if not found or not os.access(found, os.X_OK):
        raise ArgoCDError(f"{name} not found (set {env}, or run `make e2e-tools` to install it)")
    return Path(found)


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class ArgoCD:
    """Argo CD's GitOps loop on `cluster`. Attributes once started:

    namespace        `argocd`, where Applications, AppProjects and Argo CD's settings live
    redis            redis address, 127.0.0.1:<port>
    repo_server      the repo server's gRPC address, 127.0.0.1:<port>
    The logs are in cluster.dir: argocd-redis.log, argocd-repo-server.log, argocd-application-controller.log.
    """

    def __init__(self, cluster: Cluster, settings: ArgoCDSettings | None = None):
        self.cluster = cluster
        self.settings = settings or ArgoCDSettings()
        self.namespace = NAMESPACE
        self.redis = ""
        self.repo_server = ""
        self._processes: list[str] = []  # names given to cluster.run_process, in start order
        self._home: Path | None = None

    # ---- lifecycle

    def start(self) -> ArgoCD:
        if self._processes:
            raise ArgoCDError("Argo CD is already running")
        argocd = tool("KFGEN_ARGOCD", "argocd")
        redis = _system_binary("KFGEN_REDIS_SERVER", "redis-server")
        kustomize = tool("KFGEN_KUSTOMIZE", "kustomize")
        self._home = Path(self.cluster.dir) / "argocd"
        self._home.mkdir(parents=True, exist_ok=True)
        bin_dir = self._link_binaries(argocd, kustomize)
        self._install()
        self._start_redis(redis)
        self._start_repo_server(bin_dir)
        self._start_controller(bin_dir)
        return self

    def stop(self) -> None:
        """Ends the processes in the reverse order of their start: the controller, the repo server, redis."""
        while self._processes:
            self.cluster.stop_process(self._processes.pop())

    def __enter__(self) -> ArgoCD:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- what tests use

    def application(self, name: str) -> dict[str, Any]:
        """The Application as stored (status included); ArgoCDError when it does not exist."""
        result = self.cluster.kubectl("-n", self.namespace, "get", "applications.argoproj.io", name, "-o", "json", check=False)
        if result.returncode != 0:
            raise ArgoCDError(f"Application {name}: {result.stderr.strip()}")
        return json.loads(result.stdout)

    def configure(self, data: dict[str, str]) -> None:
        """Merges `data` into argocd-cm (resource customizations...); the controller reads it live."""
        self.cluster.kubectl("-n", self.namespace, "patch", "configmap", "argocd-cm", "--type=merge", "-p", json.dumps({"data": data}))

    def refresh(self, name: str) -> None:
        """Asks for a hard refresh: the controller re-resolves the revision in git and regenerates the
        manifests, bypassing the repo server's caches (the annotation is removed once done)."""
        self.cluster.kubectl("-n", self.namespace, "annotate", "--overwrite", "applications.argoproj.io", name, f"{REFRESH_ANNOTATION}=hard")

    def wait_for_app(
        self,
        name: str,
        *,
        sync: str | None = "Synced",
        health: str | None = "Healthy",
        revision: str | None = None,
        timeout: float = 120.0,
    ) -> dict[str, Any]:
        """Waits until the Application's sync status, health and synced revision are the ones given (None: any)
        and no operation is running; returns it. On timeout, ClusterTimeout names the last state seen."""
        last: dict[str, Any] = {}

        def reached() -> dict[str, Any] | None:
            app = last["app"] = self.application(name)
            status = app.get("status") or {}
            if (
                (sync is None or (status.get("sync") or {}).get("status") == sync)
                and (health is None or (status.get("health") or {}).get("status") == health)
                and (revision is None or (status.get("sync") or {}).get("revision") == revision)
                and (status.get("operationState") or {}).get("phase") != "Running"
            ):
                return app
            return None

        try:
            return self.cluster.wait_for(reached, timeout, f"Application {name} {sync}/{health}/{revision or 'any revision'}")
        except ClusterTimeout as error:
            raise ClusterTimeout(f"{error}; last seen: {describe_status(last.get('app') or {})}\n"
                                 f"{self.cluster.tail('argocd-application-controller')}") from None

    # ---- internals

    def _link_binaries(self, argocd: Path, kustomize: Path) -> Path:
        """A folder for the repo server's PATH. The binary picks its command by the name it runs as, and the
        repo server runs git with GIT_ASKPASS=argocd (found on PATH), so one binary is linked under each name."""
        assert self._home is not None
        bin_dir = self._home / "bin"
        bin_dir.mkdir(exist_ok=True)
        for name, target in (
            ("argocd", argocd),
            ("argocd-application-controller", argocd),
            ("argocd-repo-server", argocd),
            ("kustomize", kustomize),
        ):
            link = bin_dir / name
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
            link.symlink_to(target.resolve())
        return bin_dir

    def _apply(self, *objects: dict[str, Any]) -> None:
        manifest = "\n".join(json.dumps(o) for o in objects)
        result = self.cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=manifest, check=False)
        if result.returncode != 0:
            raise ArgoCDError(f"applying Argo CD's settings failed: {result.stderr.strip()}")

    def _install(self) -> None:
        files = []
        for name in CRD_FILES:
            path = CRDS / name
            if not path.is_file():
                raise ArgoCDError(f"Argo CD CRD {path} not found: the source cache ({UPSTREAM}) is missing or incomplete")
            files += ["-f", str(path)]
        # Server-side: the Application CRD is larger than the annotation client-side apply would store.
        result = self.cluster.kubectl("apply", "--server-side", "--force-conflicts", *files, check=False)
        if result.returncode != 0:
            raise ArgoCDError(f"applying Argo CD's CRDs failed: {result.stderr.strip()}")
        # Polled rather than `kubectl wait`, which fails on a CRD that has no conditions yet.
        self.cluster.wait_for(self._crds_established, 60, "Argo CD's CRDs Established")
        meta = {"namespace": self.namespace, "labels": PART_OF}
        self._apply(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "argocd-cm", **meta}, "data": dict(self.settings.config)},
            # server.secretkey is what Argo CD's API server would generate on first start; the settings
            # manager counts settings without it as incomplete.
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "argocd-secret", **meta}, "type": "Opaque",
             "data": {"server.secretkey": base64.b64encode(secrets.token_bytes(32)).decode()}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "argocd-rbac-cm", **meta}, "data": {}},
            # What Argo CD's API server creates on first start, if absent: everything allowed.
            {"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject", "metadata": {"name": "default", "namespace": self.namespace},
             "spec": {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}],
                      "clusterResourceWhitelist": [{"group": "*", "kind": "*"}]}},
        )

    def _crds_established(self) -> bool:
        names = ("crd/applications.argoproj.io", "crd/appprojects.argoproj.io")
        items = json.loads(self.cluster.kubectl("get", *names, "-o", "json").stdout)["items"]
        return all(
            any(c["type"] == "Established" and c["status"] == "True" for c in (item.get("status") or {}).get("conditions") or [])
            for item in items
        ) and len(items) == len(names)

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.cluster.run_process(name, argv, env)
        self._processes.append(name)

    def _wait(self, name: str, ready: Callable[[], bool], timeout: float = 60.0) -> None:
        self.cluster.wait_for(ready, timeout, f"{name} to answer", logs=(name,))

    def _start_redis(self, redis: Path) -> None:
        assert self._home is not None
        (port,) = _free_ports(1)
        # A cache only: nothing is persisted, and loopback without a password needs no protected mode.
        self._spawn("argocd-redis", [
            str(redis), "--port", str(port), "--bind", "127.0.0.1", "--protected-mode", "no",
            "--save", "", "--appendonly", "no", "--dir", str(self._home), "--loglevel", "warning",
        ], self.cluster.env())
        self._wait("argocd-redis", lambda: _redis_ping(port))
        self.redis = f"127.0.0.1:{port}"

    def _base_env(self, bin_dir: Path) -> dict[str, str]:
        assert self._home is not None
        env = self.cluster.env()
        env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "/usr/bin:/bin")])
        # git and the repo server's checkouts keep to the test's folder, not the user's HOME or /tmp.
        env["HOME"] = str(self._home)
        tmp = self._home / "tmp"
        tmp.mkdir(exist_ok=True)
        env["TMPDIR"] = str(tmp)
        return env

    def _start_repo_server(self, bin_dir: Path) -> None:
        assert self._home is not None
        settings = self.settings
        port, metrics = _free_ports(2)
        env = self._base_env(bin_dir)
        env.update({
            # No signature verification: no GnuPG keyring is configured (and it would start gpg-agent).
            "ARGOCD_GPG_ENABLED": "false",
            # The git credential socket, by default /tmp/reposerver-ask-pass.sock, shared by every repo server.
            "ARGOCD_ASK_PASS_SOCK": str(self._home / "askpass.sock"),
            # A manifest generation that failed 3 times is otherwise not retried for 60 minutes.
            "ARGOCD_PAUSE_GEN_AFTER_FAILED_ATTEMPTS": "0",
        })
        self._spawn("argocd-repo-server", [
            str(bin_dir / "argocd-repo-server"),
            "--address", "127.0.0.1", "--port", str(port),
            "--metrics-address", "127.0.0.1", "--metrics-port", str(metrics),
            "--disable-tls",
            "--redis", self.redis,
            "--revision-cache-expiration", settings.revision_cache_expiration,
            "--logformat", "text", "--loglevel", settings.log_level,
        ], env)
        self._wait("argocd-repo-server", lambda: http_ok(f"http://127.0.0.1:{metrics}/healthz?full=true"))
        self.repo_server = f"127.0.0.1:{port}"

    def _start_controller(self, bin_dir: Path) -> None:
        settings = self.settings
        (metrics,) = _free_ports(1)
        env = self._base_env(bin_dir)
        env["ARGOCD_FAKE_IN_CLUSTER"] = "true"
        self._spawn("argocd-application-controller", [
            str(bin_dir / "argocd-application-controller"),
            "--namespace", self.namespace,
            "--repo-server", self.repo_server, "--repo-server-plaintext",
            "--redis", self.redis,
            "--app-resync", str(settings.app_resync), "--app-resync-jitter", "0",
            "--status-processors", str(settings.status_processors),
            "--operation-processors", str(settings.operation_processors),
            "--self-heal-backoff-timeout-seconds", str(settings.self_heal_backoff_seconds),
            "--self-heal-backoff-factor", str(settings.self_heal_backoff_factor),
            "--self-heal-backoff-cap-seconds", str(settings.self_heal_backoff_cap_seconds),
            "--metrics-port", str(metrics),
            f"--persist-resource-health={str(settings.persist_resource_health).lower()}",
            "--logformat", "text", "--loglevel", settings.log_level,
        ], env)
        self._wait("argocd-application-controller", lambda: http_ok(f"http://127.0.0.1:{metrics}/healthz"))


def describe_status(app: dict[str, Any]) -> str:
    """One line for a failure message: sync, health, revision, operation phase and message, conditions."""
    status = app.get("status") or {}
    sync = status.get("sync") or {}
    operation = status.get("operationState") or {}
    parts = [
        f"sync={sync.get('status')}",
        f"health={(status.get('health') or {}).get('status')}",
        f"revision={sync.get('revision')}",
    ]
    if operation:
        parts.append(f"operation={operation.get('phase')}: {operation.get('message', '')}")
    for condition in status.get("conditions") or []:
        parts.append(f"{condition.get('type')}: {condition.get('message')}")
    unhealthy = [
        f"{r.get('kind')}/{r.get('name')}={(r.get('health') or {}).get('status')}"
        for r in status.get("resources") or []
        if (r.get("health") or {}).get("status") not in (None, "Healthy")
    ]
    if unhealthy:
        parts.append("unhealthy: " + ", ".join(unhealthy))
    return "; ".join(parts) or "(no status)"
