"""Flux's source-controller and kustomize-controller, run as processes against an e2e `Cluster`.

    with Cluster() as cluster, Flux(cluster) as flux:
        cluster.kubectl("apply", "-f", "sync.yaml")          # a GitRepository and a Kustomization
        flux.reconcile("GitRepository", "flux-system", "app")  # read git now, not at the next interval
        flux.wait_ready("Kustomization", "flux-system", "app", revision=commit)

What a real installation has and this one has too: Flux's CRDs (from the source cache, the releases
that tools/flux builds), the namespace flux-system, and the two controllers watching all namespaces.
No helm-controller, notification-controller or image automation: the GitOps loop of kfgen needs none.

How it differs from Deployments in flux-system, and why:
- The controllers read KUBECONFIG (they have no --kubeconfig flag) and run with RUNTIME_NAMESPACE set,
  as the pod's downward API would.
- source-controller serves its artifacts on 127.0.0.1 and advertises that address (--storage-addr,
  --storage-adv-addr) instead of its Service; kustomize-controller downloads them from there.
- Every listener gets a free loopback port; leader election is off (one replica per test cluster).
- --requeue-dependency is seconds, not 30 s, so that a Kustomization waiting on another is retried
  promptly; see `FluxSettings`.
- Binaries: .tools/bin/source-controller and .tools/bin/kustomize-controller (tools/flux,
  `make e2e-tools`), overridden by KFGEN_SOURCE_CONTROLLER and KFGEN_KUSTOMIZE_CONTROLLER.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controlplane import _free_ports
from e2e.cluster import Cluster, ClusterError, http_ok, tool

PROJECT = Path(__file__).resolve().parents[2]
UPSTREAM = PROJECT.parent / "shared" / "upstream" / "github.com" / "fluxcd"
SOURCE_CRDS = UPSTREAM / "source-controller" / "v1.9.1" / "config" / "crd"
KUSTOMIZE_CRDS = UPSTREAM / "kustomize-controller" / "v1.9.4" / "config" / "crd"

NAMESPACE = "flux-system"
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"

# Kind -> (group, version, plural) of the objects the tests ask about.
KINDS: dict[str, tuple[str, str, str]] = {
    "GitRepository": ("source.toolkit.fluxcd.io", "v1", "gitrepositories"),
    "OCIRepository": ("source.toolkit.fluxcd.io", "v1", "ocirepositories"),
    "Bucket": ("source.toolkit.fluxcd.io", "v1", "buckets"),
    "Kustomization": ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations"),
}


class FluxError(ClusterError):
    pass


@dataclass(frozen=True)
class FluxSettings:
    """What differs from the controllers' defaults, chosen for tests that wait on them."""

    # How soon a Kustomization whose dependsOn is not Ready is tried again (default 30 s).
    requeue_dependency: str = "2s"
    # Parallel reconciles per controller (defaults: 2 for source, 4 for kustomize).
    source_concurrent: int = 2
    kustomize_concurrent: int = 4
    log_level: str = "info"
    startup_timeout: float = 60.0


def crd_files() -> list[Path]:
    """The CRD files of both releases, in the order of their kustomization.yaml."""
    import yaml

    files = []
    for folder in (SOURCE_CRDS, KUSTOMIZE_CRDS):
        listing = yaml.safe_load((folder / "kustomization.yaml").read_text(encoding="utf-8"))
        files += [folder / resource for resource in listing["resources"]]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FluxError(f"Flux CRDs missing from the source cache: {', '.join(missing)}")
    return files


class Flux:
    """Flux's GitOps loop on `cluster`. Attributes once started:

    namespace        `flux-system`
    storage_url      where source-controller serves artifacts, http://127.0.0.1:<port>
    The logs are in cluster.dir: source-controller.log and kustomize-controller.log.
    """

    def __init__(self, cluster: Cluster, settings: FluxSettings | None = None):
        self.cluster = cluster
        self.settings = settings or FluxSettings()
        self.namespace = NAMESPACE
        self.storage_url = ""
        self._running: list[str] = []

    # ---- lifecycle

    def start(self) -> Flux:
        if self._running:
            raise FluxError("Flux is already running")
        binaries = {
            "source-controller": tool("KFGEN_SOURCE_CONTROLLER", "source-controller"),
            "kustomize-controller": tool("KFGEN_KUSTOMIZE_CONTROLLER", "kustomize-controller"),
        }
        try:
            self._install_crds()
            namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}}
            self.cluster.kubectl("apply", "-f", "-", input=json.dumps(namespace))  # kept if it exists
            for name, binary in binaries.items():
                self._start_controller(name, binary)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for name in reversed(self._running):
            self.cluster.stop_process(name)
        self._running.clear()

    def __enter__(self) -> Flux:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- requests

    def reconcile(self, kind: str, namespace: str, name: str) -> str:
        """Asks the controller to reconcile the object now, as `flux reconcile` does: a new value of the
        requestedAt annotation. Returns the value; the controller echoes it in status.lastHandledReconcileAt."""
        token = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        self._custom().patch_namespaced_custom_object(
            *KINDS[kind][:2], namespace, KINDS[kind][2], name, {"metadata": {"annotations": {REQUESTED_AT: token}}}
        )
        return token

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        group, version, plural = KINDS[kind]
        return self._custom().get_namespaced_custom_object(group, version, namespace, plural, name)

    def wait_ready(
        self, kind: str, namespace: str, name: str, *, timeout: float = 120.0, revision: str | None = None, handled: str | None = None
    ) -> dict[str, Any]:
        """Waits until the object's Ready condition is True for its current generation, and returns it.
        With `revision` (a commit id, or its start), until the revision it applied or fetched is that commit;
        with `handled` (a value from reconcile()), until the controller has handled that request."""

        def ready() -> dict[str, Any] | None:
            obj = self.get(kind, namespace, name)
            status = obj.get("status") or {}
            if status.get("observedGeneration") != obj["metadata"]["generation"]:
                return None
            if handled is not None and status.get("lastHandledReconcileAt") != handled:
                return None
            if revision is not None and revision not in self.revision(obj):
                return None
            return obj if condition(obj, "Ready").get("status") == "True" else None

        logs = ("kustomize-controller",) if kind == "Kustomization" else ("source-controller",)
        return self.cluster.wait_for(
            ready, timeout, f"{kind} {namespace}/{name} Ready" + (f" at {revision}" if revision else ""), logs=logs,
        )

    @staticmethod
    def revision(obj: dict[str, Any]) -> str:
        """What the object last applied (Kustomization) or fetched (sources), like main@sha1:<commit>."""
        status = obj.get("status") or {}
        return status.get("lastAppliedRevision") or (status.get("artifact") or {}).get("revision") or ""

    # ---- internals

    def _custom(self):
        from kubernetes import client

        return client.CustomObjectsApi(self.cluster.api)

    def _install_crds(self) -> None:
        # Server-side: these CRDs are larger than the last-applied annotation that a client-side apply keeps.
        args = ["apply", "--server-side", "--field-manager=kfgen-e2e"]
        for path in crd_files():
            args += ["-f", str(path)]
        self.cluster.kubectl(*args)
        names = [f"crd/{plural}.{group}" for group, _, plural in KINDS.values()]
        self.cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *names)

    def _start_controller(self, name: str, binary: Path) -> None:
        home = self.cluster.dir / "flux" / name
        home.mkdir(parents=True, exist_ok=True)
        # RUNTIME_NAMESPACE is where a pod of the controller would run; HOME keeps the user's git and
        # container-registry configuration out of reach.
        env = dict(self.cluster.env(), RUNTIME_NAMESPACE=self.namespace, HOME=str(home), TMPDIR=str(home))
        for _ in range(3):  # another process may take a free port between choosing and binding it
            metrics, health, storage = _free_ports(3)
            argv = [
                str(binary),
                f"--metrics-addr=127.0.0.1:{metrics}",
                f"--health-addr=127.0.0.1:{health}",
                "--enable-leader-election=false",
                "--watch-all-namespaces=true",
                f"--requeue-dependency={self.settings.requeue_dependency}",
                f"--log-level={self.settings.log_level}",
                "--log-encoding=console",
            ]
            if name == "source-controller":
                storage_address = f"127.0.0.1:{storage}"
                (home / "storage").mkdir(exist_ok=True)  # it refuses a storage path that does not exist
                argv += [
                    f"--storage-path={home / 'storage'}",
                    f"--storage-addr={storage_address}",
                    f"--storage-adv-addr={storage_address}",
                    f"--concurrent={self.settings.source_concurrent}",
                ]
            else:
                # As kfgen's Kustomizations are meant to run: everything a build reads is in the artifact.
                argv += ["--no-remote-bases=true", f"--concurrent={self.settings.kustomize_concurrent}"]
            process = self.cluster.run_process(name, argv, env, cwd=home)
            self._running.append(name)
            if self._wait_healthy(name, process, health):
                if name == "source-controller":
                    self.storage_url = f"http://{storage_address}"
                return
            self._running.remove(name)
            self.cluster.stop_process(name)
        raise FluxError(f"{name}: the ports chosen were taken three times in a row\n{self.cluster.tail(name)}")

    def _wait_healthy(self, name: str, process: subprocess.Popen, health_port: int) -> bool:
        """True once /readyz answers; False if it exited because a port was taken; FluxError otherwise."""
        deadline = time.monotonic() + self.settings.startup_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                if "address already in use" in self.cluster.tail(name, 50):
                    return False
                raise FluxError(f"{name} exited with code {process.returncode} while starting\n{self.cluster.tail(name)}")
            if http_ok(f"http://127.0.0.1:{health_port}/readyz"):
                return True
            time.sleep(0.2)
        with contextlib.suppress(Exception):
            self.cluster.stop_process(name)
        raise FluxError(f"{name} not ready after {self.settings.startup_timeout:g}s\n{self.cluster.tail(name)}")


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    """The status condition of type `kind` ({} if absent)."""
    for entry in (obj.get("status") or {}).get("conditions") or []:
        if entry.get("type") == kind:
            return entry
    return {}
