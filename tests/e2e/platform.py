"""The shipped platform as a user runs it through GitOps, for the end-to-end scenarios.

A `PlatformRepo` is a copy of the project's inputs in a git repository whose `main` is pushed to a
GitServer; kfgen runs as docs/guides/gitops.md tells users (render, vendor, commit, push, `kfgen publish --push`).
An `Engine` is the GitOps controller of a cluster (Argo CD or Flux) behind one small interface:
bootstrap from the repository as that guide says, read each component's state, ask for a refresh.
A `Recorder` samples the components' states while the platform converges, so a test can tell in
which order they became ready and what was true of their objects at that moment.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from e2e.argocd import ArgoCD
from e2e.cluster import Cluster
from e2e.flux import Flux, condition
from e2e.gitserver import GitServer

PROJECT = Path(__file__).resolve().parents[2]
REPO_NAME = "ml-platform.git"
ENV = "local"
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "Platform Team", "GIT_AUTHOR_EMAIL": "platform@example.com",
                "GIT_COMMITTER_NAME": "Platform Team", "GIT_COMMITTER_EMAIL": "platform@example.com"}


class PlatformError(RuntimeError):
    pass


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise PlatformError(f"{' '.join(argv)} exited with {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


class PlatformRepo:
    """The platform's repository as a team keeps it: spec, catalog and policies on `main`, generated
    files committed, vendor/ ignored; the GitServer holds the remote `origin`."""

    def __init__(self, root: Path, server: GitServer):
        self.root = root
        self.server = server
        self.url = server.url(REPO_NAME)
        self.env = dict(os.environ, **GIT_IDENTITY)

    def create(self, edit: Callable[[dict[str, Any]], None] | None = None) -> PlatformRepo:
        self.root.mkdir(parents=True)
        for folder in ("components", "policies", "customizations"):
            shutil.copytree(PROJECT / folder, self.root / folder)
        shutil.copy(PROJECT / ".gitignore", self.root / ".gitignore")
        spec = yaml.safe_load((PROJECT / "platform.yaml").read_text(encoding="utf-8"))
        spec["gitops"]["repoURL"] = self.url
        if edit is not None:
            edit(spec)
        self.write_spec(spec)
        self.server.init_bare(REPO_NAME)
        self.git("init", "-q", "-b", "main")
        self.git("remote", "add", "origin", self.url)
        self.commit_and_publish("Kubeflow platform")
        return self

    # ---- the user's steps

    def kfgen(self, *args: str, output: str = "text", check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run([sys.executable, "-m", "kfgen", "--output", output, *args, "--project", str(self.root)], self.root, self.env, check)

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run(["git", *args], self.root, self.env, check)

    def spec(self) -> dict[str, Any]:
        return yaml.safe_load((self.root / "platform.yaml").read_text(encoding="utf-8"))

    def write_spec(self, spec: dict[str, Any]) -> None:
        (self.root / "platform.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")

    def change(self, edit: Callable[[dict[str, Any]], None], message: str) -> str:
        """A pull request that edits the spec, merged and published: returns the published commit."""
        spec = self.spec()
        edit(spec)
        self.write_spec(spec)
        return self.commit_and_publish(message)

    def commit_and_publish(self, message: str, commit: bool = True) -> str:
        """render, vendor, commit and push main, then `kfgen publish --push origin`, as docs/guides/gitops.md says.
        Returns the published head."""
        self.kfgen("render")
        self.kfgen("vendor")
        if commit:
            self.git("add", "-A")
            self.git("commit", "-q", "-m", message)
        self.git("push", "-q", "origin", "main")
        self.kfgen("publish", "--env", ENV, "--push", "origin")
        return self.published()

    def published(self) -> str:
        return self.git("rev-parse", f"refs/heads/{self.deploy_branch()}").stdout.strip()

    def component_revision(self) -> str:
        """The commit the components sync: the published head, or for Argo CD the content commit the head pins
        every component Application to (its Pinned-Content trailer)."""
        head = self.published()
        for line in self.git("log", "-1", "--format=%B", head).stdout.splitlines():
            key, _, value = line.partition(": ")
            if key == "Pinned-Content":
                return value.strip()
        return head

    def deploy_branch(self) -> str:
        template = (self.spec().get("gitops") or {}).get("deployBranch", "deploy/{env}")
        return template.replace("{env}", ENV)

    def build(self, out: Path) -> dict[str, list[dict[str, Any]]]:
        """`kfgen build --env local`: the objects of each component."""
        self.kfgen("build", "--env", ENV, "--out", str(out))
        objects: dict[str, list[dict[str, Any]]] = {}
        for path in sorted(out.glob("*-*.yaml")):  # <index>-<component>.yaml, in dependency order
            component = path.stem.partition("-")[2]
            objects[component] = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
        if not objects:
            raise PlatformError(f"kfgen build wrote no component files into {out}")
        return objects

    def status(self, kubeconfig: str) -> tuple[int, dict[str, Any]]:
        result = self.kfgen("status", "--env", ENV, "--kubeconfig", kubeconfig, output="json", check=False)
        if result.returncode not in (0, 1):
            raise PlatformError(f"kfgen status exited with {result.returncode}:\n{result.stderr[-3000:]}")
        return result.returncode, json.loads(result.stdout)


@dataclass
class ComponentState:
    ready: bool
    revision: str
    message: str


class Engine:
    """A GitOps controller running against a cluster, as the scenarios see it."""

    name = ""
    namespace = ""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def bootstrap(self, repo: PlatformRepo) -> None:
        """What the bootstrap of docs/guides/gitops.md says once the controller runs: apply gitops/<env> from the repository."""
        self.cluster.kubectl("apply", "-k", str(repo.root / "gitops" / ENV))

    def objects(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def states(self) -> dict[str, ComponentState]:
        """Each component's state by name, from the controller's objects labelled for the environment."""
        found = {}
        for obj in self.objects():
            labels = obj["metadata"].get("labels") or {}
            if labels.get("kfgen.dev/environment") == ENV and "kfgen.dev/component" in labels:
                found[labels["kfgen.dev/component"]] = self.state(obj)
        return found

    def state(self, obj: dict[str, Any]) -> ComponentState:
        raise NotImplementedError

    def refresh(self) -> None:
        """Ask the controller to look at git now instead of at its next interval (its refresh hook)."""
        raise NotImplementedError

    def reconcile_component(self, component: str) -> None:
        raise NotImplementedError

    def logs(self) -> tuple[str, ...]:
        """The names of the controller's logs in the cluster's folder, shown when a wait times out."""
        raise NotImplementedError

    def _list(self, group: str, version: str, plural: str) -> list[dict[str, Any]]:
        from kubernetes import client

        listed = client.CustomObjectsApi(self.cluster.api).list_namespaced_custom_object(group, version, self.namespace, plural)
        return listed["items"]


class FluxEngine(Engine):
    name = "flux"

    def __init__(self, cluster: Cluster):
        super().__init__(cluster)
        self.flux = Flux(cluster)
        self.namespace = self.flux.namespace

    def start(self) -> None:
        self.flux.start()

    def stop(self) -> None:
        self.flux.stop()

    def objects(self) -> list[dict[str, Any]]:
        return self._list("kustomize.toolkit.fluxcd.io", "v1", "kustomizations")

    def state(self, obj: dict[str, Any]) -> ComponentState:
        ready = condition(obj, "Ready")
        status = obj.get("status") or {}
        current = status.get("observedGeneration") == obj["metadata"].get("generation")
        revision = (status.get("lastAppliedRevision") or "").rpartition(":")[2]
        return ComponentState(current and ready.get("status") == "True", revision, ready.get("message", ""))

    def refresh(self) -> None:
        for source in self._list("source.toolkit.fluxcd.io", "v1", "gitrepositories"):
            self.flux.reconcile("GitRepository", self.namespace, source["metadata"]["name"])
        for kustomization in self.objects():
            self.flux.reconcile("Kustomization", self.namespace, kustomization["metadata"]["name"])

    def reconcile_component(self, component: str) -> None:
        self.flux.reconcile("Kustomization", self.namespace, f"{ENV}-{component}")

    def logs(self) -> tuple[str, ...]:
        return ("kustomize-controller", "source-controller")


class ArgoCDEngine(Engine):
    name = "argocd"

    def __init__(self, cluster: Cluster):
        super().__init__(cluster)
        self.argocd = ArgoCD(cluster)
        self.namespace = self.argocd.namespace

    def start(self) -> None:
        self.argocd.start()

    def stop(self) -> None:
        self.argocd.stop()

    def objects(self) -> list[dict[str, Any]]:
        return self._list("argoproj.io", "v1alpha1", "applications")

    def state(self, obj: dict[str, Any]) -> ComponentState:
        status = obj.get("status") or {}
        sync = status.get("sync") or {}
        health = status.get("health") or {}
        operation = status.get("operationState") or {}
        ready = sync.get("status") == "Synced" and health.get("status") == "Healthy"
        message = operation.get("message") or health.get("message") or ""
        return ComponentState(ready, sync.get("revision") or "", message)

    def refresh(self) -> None:
        for app in self.objects():
            self.argocd.refresh(app["metadata"]["name"])

    def reconcile_component(self, component: str) -> None:
        self.argocd.refresh(f"{ENV}-{component}")

    def logs(self) -> tuple[str, ...]:
        return ("argocd-application-controller", "argocd-repo-server")


ENGINES: dict[str, type[Engine]] = {"argocd": ArgoCDEngine, "flux": FluxEngine}


@dataclass
class Sample:
    at: float
    states: dict[str, ComponentState]


@dataclass
class Recorder:
    """Samples the engine's component states every `interval` seconds in a thread, and calls `on_ready`
    once for each component when it is first seen ready (at revision `revision`, when set)."""

    engine: Engine
    on_ready: Callable[[str], None] | None = None
    interval: float = 0.3
    revision: str | None = None
    samples: list[Sample] = field(default_factory=list)
    ready_at: dict[str, float] = field(default_factory=dict)
    last_unready_at: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Recorder:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                states = self.engine.states()
            except Exception as error:  # an API hiccup: the next sample tries again
                self.errors.append(repr(error))
                states = {}
            now = time.time()
            self.samples.append(Sample(now, copy.deepcopy(states)))
            for name, state in states.items():
                ready = state.ready and (self.revision is None or state.revision == self.revision)
                if not ready:
                    if name not in self.ready_at:  # before it was first ready: when its dependents may not start
                        self.last_unready_at[name] = now
                elif name not in self.ready_at:
                    self.ready_at[name] = now
                    if self.on_ready is not None:
                        try:
                            self.on_ready(name)
                        except Exception as error:
                            self.errors.append(f"{name}: {error!r}")
            self._stop.wait(self.interval)
