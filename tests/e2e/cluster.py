"""A small real Kubernetes cluster for the end-to-end tests: the test control plane (etcd and
kube-apiserver, tests/controlplane.py), kube-controller-manager and kube-scheduler of the same
release, and KWOK playing the kubelet of two fake nodes.

    with Cluster() as cluster:
        cluster.kubectl("apply", "-f", "app.yaml")
        cluster.wait_for(lambda: ready(cluster), 30, "the app to be Available")

What is real: storage, validation, admission (ServiceAccount included; not the admission webhooks,
since no webhook server can answer here), RBAC, scheduling, and the controllers that turn Deployments,
StatefulSets, DaemonSets and Jobs into pods, finalize namespaces, collect garbage, bind volumes and
autoscale. What is fake: the nodes. KWOK (stages in kwok/) marks a scheduled pod Running and Ready at
once, completes Job pods, removes deleted pods and provisions a PersistentVolume for each claim of the
default StorageClass `standard`; no container ever runs, so images, probes and crashes are out of reach.

Binaries come from .tools/bin (`make e2e-tools`), or from KFGEN_KUBE_CONTROLLER_MANAGER,
KFGEN_KUBE_SCHEDULER, KFGEN_KWOK and KFGEN_KUBECTL. Every process logs to `dir/<name>.log`, dies with
the test process and is stopped by stop(); KFGEN_CONTROLPLANE_KEEP=1 keeps `dir` for reading afterwards.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from controlplane import TOOLS, ControlPlane, _die_with_parent, _tail

KWOK_STAGES = Path(__file__).resolve().parent / "kwok"
FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
STORAGE_CLASS = "standard"
# Apart from the API server's service range (controlplane.SERVICE_CLUSTER_IP_RANGE, 10.0.0.0/24).
POD_CIDR = "10.244.0.0/16"
NODE_IP = "172.18.0.2"
NODE_LEASE_SECONDS = 40

# No webhook server can answer on this cluster: the configurations that Kubeflow ships are stored, not called.
DISABLED_ADMISSION_PLUGINS = ("MutatingAdmissionWebhook", "ValidatingAdmissionWebhook")

# kube-controller-manager's controllers (names of Kubernetes 1.33). Beyond the workload controllers:
# namespace and garbage-collector finalize deletions; serviceaccount makes the `default` ServiceAccount
# that ServiceAccount admission requires of pods; the protection controllers lift the finalizers that
# admission puts on claims and volumes (without them a namespace with a claim is never deleted);
# node-lifecycle removes the not-ready taint admission puts on every new Node; resourcequota computes
# the usage without which quota admission refuses pods; clusterrole-aggregation fills aggregated roles.
CONTROLLERS = (
    "deployment-controller",
    "replicaset-controller",
    "statefulset-controller",
    "daemonset-controller",
    "job-controller",
    "cronjob-controller",
    "ttl-after-finished-controller",
    "namespace-controller",
    "garbage-collector-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    "persistentvolume-binder-controller",
    "persistentvolumeclaim-protection-controller",
    "persistentvolume-protection-controller",
    "endpoints-controller",
    "endpointslice-controller",
    "node-lifecycle-controller",
    "pod-garbage-collector-controller",
    "horizontal-pod-autoscaler-controller",
    "disruption-controller",
    "clusterrole-aggregation-controller",
    "resourcequota-controller",
)

T = TypeVar("T")


class ClusterError(RuntimeError):
    pass


class ClusterTimeout(ClusterError):
    pass


class ProcessExited(ClusterError):
    pass


def tool(env: str, name: str) -> Path:
    """A binary of the e2e suite: $env if set, else .tools/bin/<name>; ClusterError when missing."""
    path = Path(os.environ.get(env) or TOOLS / name)
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ClusterError(f"{name} not found at {path} (set by {env} or .tools/bin): run `make e2e-tools` to build it")
    return path


def kubectl_binary() -> Path:
    """kubectl of the cluster's release (.tools/bin, built with kube-apiserver), else KFGEN_KUBECTL, else PATH."""
    configured = os.environ.get("KFGEN_KUBECTL")
    if configured:
        return tool("KFGEN_KUBECTL", "kubectl")
    if (TOOLS / "kubectl").is_file():
        return TOOLS / "kubectl"
    found = shutil.which("kubectl")
    if found is None:
        raise ClusterError("kubectl not found in .tools/bin or on PATH: run `make e2e-tools` to build it")
    return Path(found)


@dataclass
class _Process:
    name: str
    popen: subprocess.Popen
    watched: bool  # its exit fails wait_for(): the cluster is broken without it


class Cluster:
    """Attributes once started: `kubeconfig` (path), `server` (URL), `dir` (temporary folder of the
    logs), `control_plane` (the ControlPlane), `nodes` (names of the fake nodes), `startup_seconds`."""

    def __init__(self, *, nodes: int = 2, startup_timeout: float = 120.0, keep_dir: bool = False):
        self.node_count = nodes
        self.startup_timeout = startup_timeout
        self.control_plane = ControlPlane(
            disabled_admission_plugins=DISABLED_ADMISSION_PLUGINS, startup_timeout=startup_timeout, keep_dir=keep_dir
        )
        self.kubeconfig = ""
        self.server = ""
        self.dir = Path()
        self.nodes = [f"kwok-node-{i}" for i in range(nodes)]
        self.startup_seconds = 0.0
        self._processes: dict[str, _Process] = {}
        self._api: Any = None

    # ---- lifecycle

    def start(self) -> Cluster:
        began = time.monotonic()
        binaries = {
            "kube-controller-manager": tool("KFGEN_KUBE_CONTROLLER_MANAGER", "kube-controller-manager"),
            "kube-scheduler": tool("KFGEN_KUBE_SCHEDULER", "kube-scheduler"),
            "kwok": tool("KFGEN_KWOK", "kwok"),
        }
        atexit.register(self.stop)
        try:
            self.control_plane.start()
            assert self.control_plane.dir is not None
            self.dir = self.control_plane.dir
            self.kubeconfig = self.control_plane.kubeconfig
            self.server = self.control_plane.server
            self._create_nodes_and_storage()  # while the API server has nothing else to answer
            self._start_components(binaries)
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def stop(self) -> None:
        """Stops every process (SIGTERM to all at once, SIGKILL after 10 s), then the control plane. Safe to call twice."""
        processes = list(self._processes.values())
        self._processes.clear()
        for process in processes:
            _signal(process.popen, signal.SIGTERM)
        for process in processes:
            _reap(process.popen)
        if self._api is not None:
            self._api.close()
            self._api = None
        self.control_plane.stop()
        atexit.unregister(self.stop)

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- processes

    def run_process(
        self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None, *, watch: bool = True, cwd: Path | None = None
    ) -> subprocess.Popen:
        """Starts `argv` with its output in dir/<name>.log (appended to: a restart keeps the earlier run's
        lines); stop() ends it. With `watch`, its exit makes wait_for() fail at once with its log."""
        current = self._processes.get(name)
        if current is not None and current.popen.poll() is None:
            raise ClusterError(f"a process named {name} is already running")
        log_path = self.log(name)
        with open(log_path, "ab") as log:
            log.write(f"=== {time.strftime('%H:%M:%S')} {' '.join(argv)}\n".encode())
            log.flush()
            popen = subprocess.Popen(
                list(argv),
                cwd=cwd or self.dir,
                env=dict(env) if env is not None else self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, ended as one
                preexec_fn=_die_with_parent,
            )
        self._processes[name] = _Process(name, popen, watch)
        return popen

    def stop_process(self, name: str) -> int | None:
        """Stops one process started by run_process; returns its exit code (None if it was not started)."""
        process = self._processes.pop(name, None)
        if process is None:
            return None
        _signal(process.popen, signal.SIGTERM)
        return _reap(process.popen)

    def check_processes(self) -> None:
        """ProcessExited, with the end of its log, if a watched process has exited."""
        for process in self._processes.values():
            code = process.popen.poll()
            if process.watched and code is not None:
                raise ProcessExited(f"{process.name} exited with code {code}\n{self.tail(process.name)}")

    def log(self, name: str) -> Path:
        return self.dir / f"{name}.log"

    def tail(self, name: str, lines: int = 30) -> str:
        return f"--- last lines of {self.log(name)}:\n{_tail(self.log(name), lines)}"

    def memory_rss(self) -> dict[str, int]:
        """Resident memory in bytes of each running process of the cluster, the control plane's included."""
        popens = {name: p.popen for name, p in self._processes.items()}
        popens.update(self.control_plane._processes)
        sizes = {}
        for name, popen in popens.items():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{popen.pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        sizes[name] = int(line.split()[1]) * 1024
        return sizes

    # ---- clients

    def api_client(self):
        """A new kubernetes.client.ApiClient as the cluster's admin (close it, or use it in `with`)."""
        return self.control_plane.api_client()

    @property
    def api(self):
        """One shared ApiClient for the harness's own calls, closed by stop()."""
        if self._api is None:
            self._api = self.api_client()
        return self._api

    def env(self) -> dict[str, str]:
        """os.environ with KUBECONFIG set to the cluster's, for the processes and commands of the tests."""
        return dict(os.environ, KUBECONFIG=self.kubeconfig)

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(kubectl_binary()), "--kubeconfig", self.kubeconfig, *args]
        result = subprocess.run(argv, capture_output=True, text=True, input=input, timeout=timeout, env=self.env())
        if check and result.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args)} exited with {result.returncode}:\n{result.stderr.strip()}")
        return result

    def wait_for(
        self, predicate: Callable[[], T], timeout: float, what: str, *, interval: float = 0.2, logs: Sequence[str] = ()
    ) -> T:
        """Calls predicate until it returns something true and returns that. A predicate that raises is
        asked again (objects and their status appear in steps); its last error is reported on timeout
        (ClusterTimeout, with the tails of the named logs). Fails at once if a watched process exits."""
        deadline = time.monotonic() + timeout
        last_error: BaseException | None = None
        while True:
            self.check_processes()
            try:
                value = predicate()
                last_error = None
            except Exception as error:  # the reason it is not there yet, reported if it never is
                value, last_error = None, error  # type: ignore[assignment]
            if value:
                return value
            if time.monotonic() > deadline:
                because = f" (last error: {last_error!r})" if last_error is not None else ""
                tails = "".join(f"\n{self.tail(name)}" for name in logs)
                raise ClusterTimeout(f"timed out after {timeout:g}s waiting for {what}{because}{tails}")
            time.sleep(interval)

    # ---- internals

    def _start_components(self, binaries: dict[str, Path]) -> None:
        plane = self.control_plane
        common = [f"--kubeconfig={self.kubeconfig}", "--leader-elect=false", "--secure-port=0"]  # no health port: no port to collide
        self.run_process("kube-controller-manager", [
            str(binaries["kube-controller-manager"]),
            *common,
            f"--controllers={','.join(CONTROLLERS)}",
            f"--service-account-private-key-file={plane.dir / 'sa.key'}",  # type: ignore[operator]
            f"--root-ca-file={plane.ca_file}",
            # Default client limits (20/s) make a sync of hundreds of objects wait on the controllers.
            "--kube-api-qps=100",
            "--kube-api-burst=200",
            # A new autoscaler is first judged one period after it appears (15 s by default): its
            # conditions, that health checks read, come sooner.
            "--horizontal-pod-autoscaler-sync-period=5s",
        ])
        self.run_process("kube-scheduler", [str(binaries["kube-scheduler"]), *common, "--kube-api-qps=100", "--kube-api-burst=200"])
        self.run_process(
            "kwok",
            [
                str(binaries["kwok"]),
                f"--kubeconfig={self.kubeconfig}",
                *(f"--config={path}" for path in sorted(KWOK_STAGES.glob("*.yaml"))),
                f"--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}=fake",
                f"--cidr={POD_CIDR}",
                f"--node-ip={NODE_IP}",
                f"--node-lease-duration-seconds={NODE_LEASE_SECONDS}",
            ],
            # kwok reads ~/.kwok/kwok.yaml when it exists: only the stages above are meant.
            env=dict(self.env(), HOME=str(self.dir)),
        )

    # Start-up speaks to the API server with plain requests: the Python client's typed APIs take seconds to import.

    def _request(self, path: str, method: str = "GET", body: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """The object at path, or None when it does not exist (404); ClusterError for any other failure."""
        status, answer = self.control_plane.request(path, method, body)
        if status == 404 and method == "GET":
            return None
        if status >= 300:
            raise ClusterError(f"{method} {path}: {status} {answer.decode(errors='replace')[:2000]}")
        return json.loads(answer)

    def _create_nodes_and_storage(self) -> None:
        self._request("/apis/storage.k8s.io/v1/storageclasses", "POST", {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": STORAGE_CLASS, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "e2e.kfgen.dev/kwok-volume",  # played by kwok's stages in kwok/volumes.yaml
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
        })
        for name in self.nodes:
            self._request("/api/v1/nodes", "POST", {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {FAKE_NODE_ANNOTATION: "fake"},
                    "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "type": "kwok"},
                },
            })

    def _wait_ready(self) -> None:
        def schedulable(node: dict[str, Any]) -> bool:
            conditions = {c["type"]: c["status"] for c in node.get("status", {}).get("conditions", [])}
            taints = {t["key"] for t in node["spec"].get("taints", [])}
            return conditions.get("Ready") == "True" and NOT_READY_TAINT not in taints

        def nodes_schedulable() -> bool:
            nodes = self._request("/api/v1/nodes") or {"items": []}
            return sum(schedulable(node) for node in nodes["items"]) == self.node_count

        def default_namespace_prepared() -> bool:
            return bool(
                self._request("/api/v1/namespaces/default/serviceaccounts/default")
                and self._request("/api/v1/namespaces/default/configmaps/kube-root-ca.crt")
            )

        logs = ("kwok", "kube-controller-manager")
        timeout = self.startup_timeout
        self.wait_for(nodes_schedulable, timeout, f"{self.node_count} Ready nodes without the {NOT_READY_TAINT} taint", logs=logs)
        self.wait_for(default_namespace_prepared, timeout, "the default ServiceAccount and kube-root-ca.crt", logs=logs[1:])


def _signal(popen: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, signum)


def _reap(popen: subprocess.Popen, grace: float = 10.0) -> int:
    try:
        return popen.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        _signal(popen, signal.SIGKILL)
        return popen.wait()


def http_ok(url: str) -> bool:
    """Whether url answers 200 now: a controller's health or readiness endpoint."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def apply_objects(cluster: Cluster, *objects: dict[str, Any]) -> None:
    """kubectl apply of objects given as dicts."""
    cluster.kubectl("apply", "-f", "-", input="\n".join(json.dumps(o) for o in objects))


def get_object(cluster: Cluster, *args: str) -> dict[str, Any] | None:
    """kubectl get -o json of what args name; None when it is not found."""
    result = cluster.kubectl("get", *args, "-o", "json", check=False)
    if result.returncode != 0:
        if "NotFound" in result.stderr:
            return None
        raise ClusterError(result.stderr)
    return json.loads(result.stdout)
