"""cert-manager's real controller, run as a process against an e2e `Cluster`, as a kubelet would run it.

    with Cluster() as cluster, CertManager(cluster) as cert_manager:
        ...   # something installs cert-manager's CRDs (a GitOps sync, or a test)
        cert_manager.wait_running()
        cert_manager.wait_certificate_ready("kubeflow", "my-cert")

On a real cluster the controller starts when cert-manager's Deployment gets a pod, which is after its
CRDs were applied. Here kwok only fakes pods, so this harness plays that part: a supervising thread
waits until cert-manager's CRDs are Established, starts the controller, and starts it again if it
exits (after 1 s, doubling up to 10 s), like a kubelet restarting a crashed container.

How it differs from the Deployment of kubeflow/manifests, and why:
- --kubeconfig instead of the pod's ServiceAccount; no leader election (one process per cluster).
- No webhook and no cainjector: the test API server runs without admission webhooks, so nothing calls
  the webhook, and no test reads an injected CA bundle.
- The binary is .tools/bin/cert-manager-controller (tools/cert-manager, `make e2e-tools`), a small main
  over cert-manager's controller library of the same release; KFGEN_CERT_MANAGER_CONTROLLER overrides it.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

from e2e.cluster import Cluster, ClusterError, tool

GROUP = "cert-manager.io"
# The CRDs whose informers the controller starts: it cannot work before all are served.
CRDS = (
    "certificaterequests.cert-manager.io",
    "certificates.cert-manager.io",
    "challenges.acme.cert-manager.io",
    "clusterissuers.cert-manager.io",
    "issuers.cert-manager.io",
    "orders.acme.cert-manager.io",
)
# Where kubeflow/manifests runs cert-manager (--cluster-resource-namespace=$(POD_NAMESPACE)): the
# Secrets that ClusterIssuers refer to live there.
NAMESPACE = "cert-manager"
PROCESS = "cert-manager-controller"


class CertManagerError(ClusterError):
    pass


class CertManager:
    """Attributes: `starts` (how many times the controller was started), `namespace`.
    The log is cluster.dir/cert-manager-controller.log (every run appends to it)."""

    def __init__(self, cluster: Cluster, *, poll: float = 0.5, max_backoff: float = 10.0, verbosity: int = 2):
        self.cluster = cluster
        self.namespace = NAMESPACE
        self.poll = poll
        self.max_backoff = max_backoff
        self.verbosity = verbosity
        self.starts = 0
        self._binary: Path | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._process: Any = None
        self._failure: BaseException | None = None

    # ---- lifecycle

    def start(self) -> CertManager:
        if self._thread is not None:
            raise CertManagerError("cert-manager is already supervised")
        self._binary = tool("KFGEN_CERT_MANAGER_CONTROLLER", "cert-manager-controller")
        self._stopping.clear()
        self._thread = threading.Thread(target=self._supervise, name="cert-manager-supervisor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        with self._lock:
            self.cluster.stop_process(PROCESS)
            self._process = None

    def __enter__(self) -> CertManager:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- waiting

    def running(self) -> bool:
        """True while the controller process is alive; raises what stopped the supervisor, if anything did."""
        if self._failure is not None:
            raise CertManagerError(f"the supervisor of cert-manager failed: {self._failure!r}") from self._failure
        with self._lock:
            return self._process is not None and self._process.poll() is None

    def wait_running(self, timeout: float = 60.0) -> None:
        self.cluster.wait_for(self.running, timeout, "cert-manager's controller to run (its CRDs Established)", logs=(PROCESS,))

    def wait_certificate_ready(self, namespace: str, name: str, timeout: float = 60.0) -> dict[str, Any]:
        """Waits until Certificate namespace/name is Ready=True for its current generation and has been
        issued (status.revision set: cert-manager may mark it Ready from the Secret a moment before the
        issuing controller records the revision); returns it."""
        from kubernetes import client

        api = client.CustomObjectsApi(self.cluster.api)

        def ready() -> dict[str, Any] | None:
            self.running()  # fail at once if the supervisor died
            obj = api.get_namespaced_custom_object(GROUP, "v1", namespace, "certificates", name)
            current = obj["metadata"]["generation"]
            if not (obj.get("status") or {}).get("revision"):
                return None
            for entry in (obj.get("status") or {}).get("conditions") or []:
                if entry.get("type") == "Ready" and entry.get("status") == "True" and entry.get("observedGeneration") == current:
                    return obj
            return None

        return self.cluster.wait_for(ready, timeout, f"Certificate {namespace}/{name} Ready", logs=(PROCESS,))

    # ---- internals

    def _crds_established(self) -> bool:
        from kubernetes import client

        api = client.ApiextensionsV1Api(self.cluster.api)
        for name in CRDS:
            try:
                crd = api.read_custom_resource_definition(name)
            except client.ApiException as error:
                if error.status == 404:
                    return False
                raise
            conditions = {c.type: c.status for c in (crd.status.conditions if crd.status else None) or []}
            if conditions.get("Established") != "True":
                return False
        return True

    def _launch(self) -> None:
        argv = [
            str(self._binary),
            f"--kubeconfig={self.cluster.kubeconfig}",
            f"--cluster-resource-namespace={self.namespace}",
            f"--v={self.verbosity}",
        ]
        with self._lock:
            if self._stopping.is_set():
                return
            # Not watched by the cluster: an exit is this supervisor's to handle, as a kubelet's would be.
            self._process = self.cluster.run_process(PROCESS, argv, watch=False)
            self.starts += 1

    def _supervise(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    if self._crds_established():
                        break
                except Exception:  # the API server may refuse while it is busy; ask again
                    pass
                self._stopping.wait(self.poll)
            backoff = 1.0
            while not self._stopping.is_set():
                self._launch()
                while not self._stopping.is_set():
                    with self._lock:
                        code = self._process.poll() if self._process is not None else 0
                    if code is not None:
                        break
                    self._stopping.wait(self.poll)
                if self._stopping.is_set():
                    return
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)
        except BaseException as error:
            self._failure = error
            with contextlib.suppress(Exception):
                self.cluster.stop_process(PROCESS)
