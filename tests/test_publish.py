"""kfgen publish, with real git, the real kustomize and the real upstream sources: each environment's deploy
branch is written with plumbing only (the checkout untouched), unchanged output makes no commit, commits are
reproducible and carry their provenance, and a fresh clone of a deploy branch builds every path the
controllers read with no network and no remote reference, for Argo CD and Flux, overlays and hydrated."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import PROJECT, TempProject, identity, shipped_spec, tree_snapshot
from kfgen.build import yaml_to_json_lines
from kfgen.refs import parse_remote
from kfgen.sources import _local_references, find_kustomization
from kfgen.yamlio import load_all_plain

KUSTOMIZE = os.environ.get("KFGEN_KUSTOMIZE") or str(PROJECT / ".tools" / "bin" / "kustomize")
YAML2JSON = os.environ.get("KFGEN_YAML2JSON") or str(PROJECT / ".tools" / "bin" / "yaml2json")
# The source commit's people and dates: a deploy commit takes them over, so the same inputs give the same commit.
SOURCE_IDENTITY = {"GIT_AUTHOR_NAME": "Ada Lovelace", "GIT_AUTHOR_EMAIL": "ada@example.com", "GIT_AUTHOR_DATE": "1700000000 +0100",
                   "GIT_COMMITTER_NAME": "Grace Hopper", "GIT_COMMITTER_EMAIL": "grace@example.com", "GIT_COMMITTER_DATE": "1700000100 +0200"}
# kustomize with no way out: any remote base it tried to fetch would fail rather than reach the network.
OFFLINE = {**os.environ, "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "GIT_ALLOW_PROTOCOL": "file",
           "GIT_TERMINAL_PROMPT": "0"}
# A component the local environment leaves out while staging and prod keep it: its sources must not be published to local.
LEFT_OUT = "katib"


def git(root: Path, *args: str, check: bool = True, input: str | None = None, **env: str) -> str:
    result = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, input=input, env={**os.environ, **env})
    assert not check or result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
    return result.stdout.strip()


def commit_all(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-qm", message, **SOURCE_IDENTITY)
    return git(root, "rev-parse", "HEAD")


def spec_with(engine: str = "argocd", hydrated: bool = False) -> dict[str, Any]:
    spec = copy.deepcopy(shipped_spec())
    spec["gitops"] = {"engine": engine, "repoURL": "https://git.example.com/ml-platform.git", "revision": "main"}
    if hydrated:
        spec["gitops"]["hydrated"] = True
    local = next(e for e in spec["environments"] if e["name"] == "local")
    local.setdefault("components", {})[LEFT_OUT] = {"enabled": False}
    return spec


def repository(project: TempProject) -> TempProject:
    """The project rendered, vendored and committed on main (vendor/ ignored, as in the real project)."""
    project.render()
    project.vendor()
    (project.root / ".gitignore").write_text("/vendor/\n/.kfgen/\n/.secrets/\n", encoding="utf-8")
    git(project.root, "init", "-q", "-b", "main")
    commit_all(project.root, "platform")
    return project


def publish(project: TempProject, *args: str, expect: int = 0) -> dict[str, Any]:
    result = project.kfgen("--output", "json", "publish", *args)
    assert result.returncode == expect, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1]) if result.stdout.strip() else {}


def only(report: dict[str, Any], env: str = "local") -> dict[str, Any]:
    return next(e for e in report["environments"] if e["environment"] == env)


def checkout_state(root: Path) -> dict[str, Any]:
    """Everything a publish must leave alone: the files (vendor/ too), the index, HEAD and the branch it names."""
    index = (root / ".git" / "index").read_bytes()  # read first: nothing below may refresh it
    files = {p: data for p, data in tree_snapshot(root).items() if not p.startswith((".git/", ".kfgen/"))}
    return {"index": index, "files": files, "head": git(root, "symbolic-ref", "HEAD"), "commit": git(root, "rev-parse", "HEAD"),
            "status": git(root, "--no-optional-locks", "status", "--porcelain", "--untracked-files=all")}


def trailers(root: Path, commit: str) -> dict[str, str]:
    message = git(root, "log", "-1", "--format=%B", commit)
    parsed = subprocess.run(["git", "interpret-trailers", "--parse"], input=message, capture_output=True, text=True, check=True).stdout
    return dict(line.split(": ", 1) for line in parsed.splitlines())


@pytest.fixture(scope="module")
def argocd_repo(tmp_path_factory) -> TempProject:
    return repository(TempProject(tmp_path_factory.mktemp("publish") / "project", spec_with("argocd")))


def test_publish_writes_the_branch_and_touches_nothing_else(argocd_repo):
    root = argocd_repo.root
    source = git(root, "rev-parse", "HEAD")
    before = checkout_state(root)
    report = publish(argocd_repo, "--env", "local")
    assert checkout_state(root) == before
    local = only(report)
    assert [e["environment"] for e in report["environments"]] == ["local"]
    assert local["branch"] == "deploy/local" and local["changed"] and local["previous"] is None
    head = git(root, "rev-parse", "refs/heads/deploy/local")
    assert local["commit"] == head and report["sourceCommit"] == source

    # The tree: the environment's GitOps objects, overlays, the bases of its components and the sources they reach.
    paths = set(git(root, "ls-tree", "-r", "--name-only", head).splitlines())
    assert local["files"] == len(paths)
    plan = argocd_repo.plan().environment("local")
    enabled = {p.name for p in plan.components}
    assert LEFT_OUT not in enabled
    project_files = set(tree_snapshot(root))
    for prefix in ("gitops/local/", "overlays/local/"):
        assert {p for p in paths if p.startswith(prefix)} == {p for p in project_files if p.startswith(prefix)}
    assert {p.split("/")[1] for p in paths if p.startswith("base/")} == {c for c in enabled if (root / "base" / c).is_dir()}
    assert not any(p.startswith(("overlays/staging/", "gitops/prod/", "generated-files.json", "platform.yaml", "components/")) for p in paths)
    # Only the vendored sources local's bases reach: katib's upstream stays out, though vendor/ holds it for staging.
    vendored = {p for p in paths if p.startswith("vendor/")}
    assert vendored and vendored < {p for p in project_files if p.startswith("vendor/")}
    assert any("/applications/katib/" in p for p in project_files) and not any("/applications/katib/" in p for p in vendored)
    blobs = dict(line.split(" ", 2)[2].split("\t")[::-1] for line in git(root, "ls-tree", "-r", head).splitlines())
    hashed = git(root, "hash-object", "--no-filters", "--stdin-paths", input="\n".join(sorted(vendored)) + "\n").split()
    assert hashed == [blobs[p] for p in sorted(vendored)]  # byte for byte what vendor/ holds

    # Provenance, in PUBLISHED.json and in the commit's trailers; people and dates are the source commit's.
    spec_digest = hashlib.sha256(argocd_repo.spec_path.read_bytes()).hexdigest()
    published = json.loads(git(root, "show", f"{head}:PUBLISHED.json"))
    assert published == {"environment": "local", "sourceCommit": source, "specSha256": spec_digest, "kfgenVersion": "0.1.0",
                         "engine": "argocd", "sourceMode": "vendored", "hydrated": False, "sourceDirty": False}
    content = git(root, "rev-parse", f"{head}^")
    assert trailers(root, head) == {"Environment": "local", "Source-Commit": source, "Spec-Digest": f"sha256:{spec_digest}",
                                    "Kfgen-Version": "0.1.0", "Pinned-Content": content}
    assert trailers(root, content) == {"Environment": "local", "Source-Commit": source, "Spec-Digest": f"sha256:{spec_digest}",
                                       "Kfgen-Version": "0.1.0"}
    # Argo CD: the head pins every component Application to the content commit before it; nothing else differs.
    changed = git(root, "diff", "--name-only", content, head).splitlines()
    apps = sorted(p for p in paths if p.startswith("gitops/local/apps/") and not p.endswith("/kustomization.yaml"))
    assert changed == apps and len(apps) == len(enabled)
    for path in apps:
        pinned, followed = (yaml.safe_load(git(root, "show", f"{commit}:{path}")) for commit in (head, content))
        assert pinned["spec"]["source"]["targetRevision"] == content and followed["spec"]["source"]["targetRevision"] == "deploy/local"
        followed["spec"]["source"]["targetRevision"] = content
        assert pinned == followed
    people = git(root, "log", "-1", "--format=%an|%ae|%ad|%cn|%ce|%cd", "--date=raw", head)
    assert people == "Ada Lovelace|ada@example.com|1700000000 +0100|Grace Hopper|grace@example.com|1700000100 +0200"

    # Unchanged inputs: no commit. The same inputs again from scratch: the very same commit.
    again = publish(argocd_repo, "--env", "local")
    assert only(again)["changed"] is False and only(again)["commit"] == head
    git(root, "update-ref", "-d", "refs/heads/deploy/local")
    assert only(publish(argocd_repo, "--env", "local"))["commit"] == head
    assert checkout_state(root) == before

    # A source commit that changes nothing local gets (a README) makes no commit either.
    (root / "README.md").write_text("The platform.\n", encoding="utf-8")
    commit_all(root, "readme")
    assert only(publish(argocd_repo, "--env", "local"))["changed"] is False

    # A changed spec: exactly one commit on top, with the new source commit and spec digest.
    spec = spec_with("argocd")
    next(e for e in spec["environments"] if e["name"] == "local")["components"]["jupyter-web-app"] = {"replicas": 2}
    argocd_repo.write_spec(spec)
    argocd_repo.render()
    changed_source = commit_all(root, "two jupyter web apps")
    before = checkout_state(root)
    report = only(publish(argocd_repo, "--env", "local"))
    assert checkout_state(root) == before
    assert report["changed"] and report["previous"] == head
    new_head = git(root, "rev-parse", "refs/heads/deploy/local")
    assert git(root, "rev-list", "--count", "refs/heads/deploy/local") == "4"  # each publish: content, then pins
    assert git(root, "rev-parse", f"{new_head}^^") == head
    new_digest = hashlib.sha256(argocd_repo.spec_path.read_bytes()).hexdigest()
    assert trailers(root, new_head)["Source-Commit"] == changed_source
    assert trailers(root, new_head)["Spec-Digest"] == f"sha256:{new_digest}"
    changed = git(root, "diff", "--name-only", head, new_head).splitlines()
    assert "PUBLISHED.json" in changed and any(p.startswith("overlays/local/jupyter-web-app/") for p in changed)
    assert not any(p.startswith("vendor/") for p in changed)


def test_refusals_write_nothing(make_project):
    project = repository(make_project(spec_with("argocd")))
    root = project.root
    publish(project, "--env", "local")
    head = git(root, "rev-parse", "refs/heads/deploy/local")

    # Uncommitted changes to what the publish reads: refused, unless allowed, and then recorded as such.
    with open(project.spec_path, "a", encoding="utf-8") as spec:
        spec.write("# a comment changes no generated file\n")
    refused = project.kfgen("publish", "--env", "local")
    assert refused.returncode == 2, refused.stderr
    assert "uncommitted changes" in refused.stderr and "platform.yaml" in refused.stderr
    allowed = only(publish(project, "--env", "local", "--allow-dirty"))
    assert allowed["changed"] is False  # the output is the same; only the spec's comment differs
    git(root, "checkout", "-q", "platform.yaml")
    stray = root / "overlays" / "local" / "notes.yaml"
    stray.write_text("kind: Note\n", encoding="utf-8")
    refused = project.kfgen("publish", "--env", "local")
    assert refused.returncode == 2 and "overlays/local/notes.yaml" in refused.stderr, refused.stderr
    dirty = only(publish(project, "--env", "local", "--allow-dirty"))
    assert dirty["changed"] and trailers(root, dirty["commit"])["Source-Dirty"] == "true"
    assert json.loads(git(root, "show", f"{dirty['commit']}:PUBLISHED.json"))["sourceDirty"] is True
    assert "overlays/local/notes.yaml" in git(root, "ls-tree", "-r", "--name-only", dirty["commit"])
    stray.unlink()
    git(root, "update-ref", "refs/heads/deploy/local", head)

    # Generated files that drift from the spec: refused, with or without --allow-dirty.
    kustomization = root / "overlays" / "local" / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text(encoding="utf-8") + "# edited by hand\n", encoding="utf-8")
    refused = project.kfgen("publish", "--env", "local", "--allow-dirty")
    assert refused.returncode == 2 and "overlays/local/kustomization.yaml" in refused.stderr and "kfgen render" in refused.stderr
    git(root, "checkout", "-q", "overlays/local/kustomization.yaml")

    # vendor/ that no longer matches its lock: refused.
    vendored = next(p for p in sorted((root / "vendor").rglob("*.yaml")))
    vendored.write_text(vendored.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
    refused = project.kfgen("publish", "--env", "local")
    assert refused.returncode == 2 and "vendor/ does not match" in refused.stderr, refused.stderr
    vendored.write_text(vendored.read_text(encoding="utf-8").removesuffix("# edited\n"), encoding="utf-8")

    # A component enabled, rendered and committed, but its sources never vendored: refused, saying how to fix it.
    spec = spec_with("argocd")
    spec["components"]["knative-eventing"] = {"enabled": True}
    project.write_spec(spec)
    project.render()
    commit_all(root, "knative eventing")
    refused = project.kfgen("publish", "--env", "local")
    assert refused.returncode == 2 and "run `kfgen vendor`" in refused.stderr, refused.stderr
    assert git(root, "rev-parse", "refs/heads/deploy/local") == head
    assert git(root, "branch", "--list", "deploy/staging") == ""


def test_push_to_a_bare_repository(make_project, tmp_path):
    project = repository(make_project(spec_with("argocd")))
    root = project.root
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    report = publish(project, "--push", str(remote))
    assert report["push"]["ok"] and [e["branch"] for e in report["environments"]] == ["deploy/local", "deploy/staging", "deploy/prod"]
    for env in report["environments"]:
        assert git(remote, "rev-parse", f"refs/heads/{env['branch']}") == env["commit"]

    # A checkout without the local branch (CI's fresh clone) follows what the remote has: nothing to commit, nothing to push.
    local_head = git(root, "rev-parse", "refs/heads/deploy/local")
    git(root, "update-ref", "-d", "refs/heads/deploy/local")
    again = only(publish(project, "--env", "local", "--push", str(remote)))
    assert again["changed"] is False and again["commit"] == local_head
    assert git(root, "rev-parse", "refs/heads/deploy/local") == local_head

    # Someone published on top of ours elsewhere: the next publish builds on their commit, and the push goes through.
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", "-b", "deploy/local", str(remote), str(other))
    (other / "elsewhere.txt").write_text("another publisher\n", encoding="utf-8")
    ahead = commit_all(other, "published elsewhere")
    git(other, "push", "-q", "origin", "deploy/local")
    change_local_replicas(project, 2)
    report = publish(project, "--env", "local", "--push", str(remote))
    assert report["push"]["ok"] and only(report)["previous"] == ahead
    ours = only(report)["commit"]
    assert git(remote, "rev-parse", "refs/heads/deploy/local^^") == ahead
    assert "elsewhere.txt" not in git(remote, "ls-tree", "--name-only", "refs/heads/deploy/local")  # the tree is ours alone

    # Someone rewrote the remote branch: ours and theirs diverged, so the push is refused, never forced.
    git(other, "fetch", "-q", "origin")
    git(other, "reset", "-q", "--hard", "origin/deploy/local")
    git(other, "commit", "-q", "--amend", "-m", "rewritten elsewhere", **SOURCE_IDENTITY)
    git(other, "push", "-q", "--force", "origin", "deploy/local")
    foreign = git(other, "rev-parse", "HEAD")
    change_local_replicas(project, 3)
    result = project.kfgen("--output", "json", "publish", "--env", "local", "--push", str(remote))
    assert result.returncode == 1, result.stderr
    assert "rejected" in result.stderr and "deploy/local" in result.stderr, result.stderr
    assert json.loads(result.stdout)["push"]["ok"] is False
    assert git(remote, "rev-parse", "refs/heads/deploy/local") == foreign
    assert git(root, "rev-parse", "refs/heads/deploy/local^^") == ours  # built on our own head


def change_local_replicas(project: TempProject, replicas: int) -> str:
    spec = spec_with("argocd")
    next(e for e in spec["environments"] if e["name"] == "local")["sizing"]["replicas"] = replicas
    project.write_spec(spec)
    project.render()
    return commit_all(project.root, f"{replicas} replicas")


def test_remote_mode_publishes_below_gitops_path_and_revision_mode_has_nothing_to_publish(make_project):
    spec = spec_with("flux")
    spec["sources"] = {"mode": "remote"}
    spec["gitops"]["path"] = "platform"  # the project lives in a folder of the repository the controllers read
    project = make_project(spec)
    project.render()
    git(project.root, "init", "-q", "-b", "main")
    commit_all(project.root, "platform")
    report = only(publish(project, "--env", "local"))
    paths = git(project.root, "ls-tree", "-r", "--name-only", report["commit"]).splitlines()
    assert paths and all(p.startswith("platform/") for p in paths) and "platform/PUBLISHED.json" in paths
    assert not any(p.startswith("platform/vendor/") for p in paths)  # the controllers fetch upstream themselves
    base = yaml.safe_load(git(project.root, "show", f"{report['commit']}:platform/base/dex/kustomization.yaml"))
    assert all(r.startswith("https://github.com/kubeflow/manifests//") for r in base["resources"])
    for name in ("dex", "pipelines"):
        kustomization = yaml.safe_load(git(project.root, "show", f"{report['commit']}:platform/gitops/local/components/{name}.yaml"))
        assert f"{kustomization['spec']['path'].removeprefix('./')}/kustomization.yaml" in paths

    spec["gitops"]["syncFrom"] = "revision"
    project.write_spec(spec)
    project.render()
    commit_all(project.root, "the controllers follow main")
    result = project.kfgen("publish")
    assert result.returncode == 0 and "nothing to publish" in result.stdout and "'main'" in result.stdout, result.stdout + result.stderr
    assert git(project.root, "rev-parse", "refs/heads/deploy/local") == report["commit"]


# ---- a fresh clone of a deploy branch, as a controller sees it


def controller_paths(clone: Path, env: str) -> dict[str, str]:
    """Every path an Application or Flux Kustomization of gitops/<env>/ syncs, with its component ('' for roots)."""
    paths: dict[str, str] = {}
    for file in sorted((clone / "gitops" / env).rglob("*.yaml")):
        for doc in load_all_plain(file.read_text(encoding="utf-8")):
            if not isinstance(doc, dict):
                continue
            component = (doc.get("metadata", {}).get("labels") or {}).get("kfgen.dev/component", "")
            if doc.get("kind") == "Application":
                source = doc["spec"]["source"]
                # The root follows the branch; components are pinned to the content commit just before the head.
                pinned = git(clone, "rev-parse", "HEAD^") if component else f"deploy/{env}"
                assert source["targetRevision"] == pinned, file
                paths[source["path"]] = component
            elif doc.get("kind") == "Kustomization" and doc["apiVersion"].startswith("kustomize.toolkit.fluxcd.io/"):
                paths[doc["spec"]["path"].removeprefix("./")] = component
            elif doc.get("kind") == "GitRepository":
                assert doc["spec"]["ref"] == {"branch": f"deploy/{env}"}, file
    return paths


def assert_no_remote_reference(clone: Path) -> int:
    """Flux's --no-remote-bases, checked: no kustomization in the tree names anything outside it. Returns how many were read."""
    count = 0
    for path in clone.rglob("*"):
        if path.is_dir() or find_kustomization(path.parent) != path or ".git" in path.parts:
            continue
        count += 1
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for field, reference in _local_references(document):
            assert "://" not in reference and not reference.startswith("git@") and parse_remote(reference) is None, (path, reference)
            target = (path.parent / reference).resolve()
            assert target.is_relative_to(clone.resolve()), (path, field, reference)
    return count


def kustomize_build(folder: Path) -> list[dict[str, Any]]:
    """What a controller gets from a path: kustomize's build, with a kustomization of all its YAML files made first
    when it has none, as Flux's kustomize-controller does (Argo CD reads such a folder as plain YAML: the same objects)."""
    if find_kustomization(folder) is None:
        files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.yaml"))
        (folder / "kustomization.yaml").write_text(yaml.safe_dump({"resources": files}), encoding="utf-8")
    result = subprocess.run([KUSTOMIZE, "build", str(folder)], capture_output=True, text=True, env=OFFLINE, timeout=300)
    assert result.returncode == 0, f"kustomize build {folder}: {result.stderr[-2000:]}"
    return [json.loads(line) for line in yaml_to_json_lines(YAML2JSON, result.stdout).splitlines() if line]  # as kfgen build reads it


def by_identity(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(objects, key=lambda o: (identity(o), json.dumps(o, sort_keys=True)))


@pytest.fixture(scope="module")
def local_objects(tmp_path_factory) -> dict[str, list[dict[str, Any]]]:
    """`kfgen build --env local` of the test spec, by component: the same for every engine and for hydrated."""
    root = tmp_path_factory.mktemp("expected")
    project = TempProject(root / "project", spec_with("argocd"))
    project.vendor()
    project.render()
    # Through the CLI, whose build cache the hydrated publishes share: they find these builds there.
    result = project.kfgen("build", "--env", "local", "--out", str(root / "build"))
    assert result.returncode == 0, result.stderr
    return {path.stem.partition("-")[2]: [json.loads(line) for line in yaml_to_json_lines(YAML2JSON, path.read_text()).splitlines() if line]
            for path in sorted((root / "build").glob("*-*.yaml"))}


@pytest.mark.slow  # publishes, clones and builds each variant
@pytest.mark.parametrize(("engine", "hydrated"), [("argocd", False), ("flux", False), ("argocd", True), ("flux", True)],
                         ids=["argocd-overlays", "flux-overlays", "argocd-hydrated", "flux-hydrated"])
def test_fresh_clone_of_the_deploy_branch_builds_offline(engine, hydrated, make_project, tmp_path, local_objects):
    project = repository(make_project(spec_with(engine, hydrated)))
    publish(project, "--env", "local")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--no-local", "-b", "deploy/local", str(project.root), str(clone)], check=True, env=OFFLINE)
    assert assert_no_remote_reference(clone) > 0 or hydrated
    top = {p.name for p in clone.iterdir() if p.name != ".git"}
    assert top == ({"gitops", "rendered", "PUBLISHED.json"} if hydrated else {"gitops", "overlays", "base", "vendor", "PUBLISHED.json"})
    paths = controller_paths(clone, "local")
    plan = project.plan().environment("local")
    components = {p.name for p in plan.components}
    assert {c for c in paths.values() if c} == components
    for path in paths:
        assert (clone / path).is_dir(), f"{path} is not in the deploy branch"
    with ThreadPoolExecutor(max_workers=2) as pool:
        outputs = dict(zip(paths, pool.map(lambda p: kustomize_build(clone / p), paths), strict=True))
    # Each component's objects are exactly those of `kfgen build`.
    expected = local_objects
    assert set(expected) == components
    for path, component in paths.items():
        if component:
            assert by_identity(outputs[path]) == by_identity(expected[component]), f"{engine} {path} differs from kfgen build"


def test_every_environment_of_the_shipped_spec_builds_from_its_branch(make_project, tmp_path):
    """The shipped spec as it is (Argo CD, vendored overlays): after `kfgen publish`, every Application of
    every environment builds from a fresh clone of its own branch, offline."""
    project = repository(make_project())
    report = publish(project)
    environments = [e.name for e in project.plan().environments]
    assert sorted(e["environment"] for e in report["environments"]) == sorted(environments)
    for env in environments:
        clone = tmp_path / f"clone-{env}"
        subprocess.run(["git", "clone", "-q", "--no-local", "-b", f"deploy/{env}", str(project.root), str(clone)], check=True, env=OFFLINE)
        assert assert_no_remote_reference(clone) > 0
        paths = controller_paths(clone, env)
        assert {c for c in paths.values() if c} == {p.name for p in project.plan().environment(env).components}
        with ThreadPoolExecutor(max_workers=2) as pool:
            built = dict(zip(paths, pool.map(lambda p, clone=clone: kustomize_build(clone / p), paths), strict=True))
        assert all(built[path] for path, component in paths.items() if component), f"{env}: a component built to nothing"
