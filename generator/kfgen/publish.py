"""Publishing: what the GitOps controllers read, committed to one deploy branch per environment.

A controller sees only git, and the main branch holds the spec and the rendered kustomize but not
vendor/ (nor built YAML). So each environment gets a branch (gitops.deployBranch, `deploy/<env>`)
whose tree is, at the same paths as in the project, below gitops.path:

    gitops/<env>/**                          the Argo CD or Flux objects
    overlays/<env>/**, base/<c>/**           the overlays and the bases of the enabled components,
    vendor/...                               and the vendored sources those bases reach (vendored mode)
  or, with gitops.hydrated:
    rendered/<env>/<c>/manifests.yaml        kustomize's output per component, plain YAML
  and PUBLISHED.json                         environment, source commit, spec digest, kfgen version

Only git plumbing is used, so the checkout is never touched: blobs are written with hash-object, the
tree is made in a temporary index, the commit with commit-tree (author, committer and dates taken from
the source commit, so the same inputs give the same commit) and the branch is moved with update-ref
against its old value, so that two publishes racing each other cannot lose a commit.

A publish whose files equal the branch head's (PUBLISHED.json aside) makes no commit: a source commit
that changes nothing an environment gets (a README edit) leaves its branch, and the controllers, alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__
from .buildcache import BuildCache
from .errors import KfgenError, SourceError
from .output import MANIFEST, drift
from .plan import EnvironmentPlan, Plan
from .refs import parse_remote
from .render import RenderedTree
from .sources import LOCK_FILE, SourceCache, _local_references, find_kustomization, verify_vendor
from .yamlio import dump, load_plain

PUBLISHED_FILE = "PUBLISHED.json"
FILE_MODE = "100644"  # every published file is a plain file: the tree must not depend on the checkout's modes
# Trailers of each deploy commit (git interpret-trailers reads them).
TRAILER_SOURCE = "Source-Commit"
TRAILER_SPEC = "Spec-Digest"
TRAILER_ENVIRONMENT = "Environment"
TRAILER_VERSION = "Kfgen-Version"
TRAILER_DIRTY = "Source-Dirty"
TRAILER_CONTENT = "Pinned-Content"


class PublishRefused(KfgenError):
    """The project is not in a state to publish from: drift, uncommitted changes, no commit. Exit 2."""

    exit_code = 2


class GitFailed(KfgenError):
    """A git command failed while publishing, or the remote could not be read. Exit 1."""

    exit_code = 1


@dataclass(frozen=True)
class Provenance:
    """Where a publish comes from; recorded in PUBLISHED.json and in each commit's trailers."""

    source_commit: str
    spec_digest: str  # "sha256:<hex>" of the spec file's bytes
    kfgen_version: str
    dirty: bool  # published with --allow-dirty from a tree that differs from the source commit


@dataclass(frozen=True)
class PublishedBranch:
    environment: str
    branch: str
    commit: str  # the branch head after publishing
    previous: str | None  # the head it was built on (None for the branch's first commit)
    changed: bool  # whether a commit was made
    files: int
    seconds: float


@dataclass(frozen=True)
class PushResult:
    remote: str
    ok: bool
    message: str  # git's own words


@dataclass(frozen=True)
class PublishReport:
    provenance: Provenance | None
    branches: tuple[PublishedBranch, ...]
    push: PushResult | None = None
    skipped: str | None = None  # why nothing was published, when nothing was


@dataclass(frozen=True)
class PublishOptions:
    environments: tuple[str, ...] = ()  # empty: every environment of the spec
    allow_dirty: bool = False
    push: str | None = None  # a remote name or URL
    jobs: int | None = None


Progress = Callable[[str, int, int, float], None]


class Git:
    """git in one repository. The caller's index is never used: commands that need one get a temporary one."""

    def __init__(self, cwd: Path):
        self.cwd = cwd
        # An inherited GIT_INDEX_FILE (a hook, say) must not redirect our reads or writes.
        self.env = {k: v for k, v in os.environ.items() if k != "GIT_INDEX_FILE"}
        self.env["GIT_OPTIONAL_LOCKS"] = "0"  # `git status` must not refresh the caller's index
        self.env["GIT_TERMINAL_PROMPT"] = "0"  # a push must fail, not wait for a password
        self._blobs: dict[Path, str] = {}

    def run(self, *args: str, input: str | None = None, env: dict[str, str] | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(["git", "-C", str(self.cwd), *args], input=input, capture_output=True, text=True,
                                encoding="utf-8", errors="surrogateescape", env={**self.env, **(env or {})})
        if check and result.returncode != 0:
            raise GitFailed(f"git {args[0]} failed: {result.stderr.strip() or result.stdout.strip()}")
        return result

    def commit_of(self, ref: str) -> str | None:
        found = self.run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
        return found.stdout.strip() if found.returncode == 0 else None

    def is_ancestor(self, older: str, newer: str) -> bool:
        return self.run("merge-base", "--is-ancestor", older, newer, check=False).returncode == 0

    def hash_files(self, paths: Iterable[Path]) -> dict[Path, str]:
        """Blob ids of files, written into the object store as they are (no filters: the bytes on disk)."""
        wanted = sorted({p for p in paths if p not in self._blobs})
        if wanted:
            if any("\n" in str(p) for p in wanted):
                raise PublishRefused("a file to publish has a line break in its name")
            out = self.run("hash-object", "-w", "--no-filters", "--stdin-paths", input="".join(f"{p}\n" for p in wanted)).stdout.split()
            self._blobs.update(zip(wanted, out, strict=True))
        return {p: self._blobs[p] for p in paths}

    def write_tree(self, entries: dict[str, str]) -> str:
        """The tree of entries (path in the tree -> blob id), made in a temporary index."""
        with tempfile.TemporaryDirectory(prefix="kfgen-publish-index-") as scratch:
            env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            info = "".join(f"{FILE_MODE} {blob}\t{path}\0" for path, blob in sorted(entries.items()))
            self.run("update-index", "--add", "-z", "--index-info", input=info, env=env)
            return self.run("write-tree", env=env).stdout.strip()

    def tree_entries(self, commit: str) -> dict[str, str]:
        """The blobs of a commit's tree, by path."""
        listing = self.run("ls-tree", "-r", "-z", "--full-tree", commit).stdout
        entries = {}
        for line in filter(None, listing.split("\0")):
            meta, path = line.split("\t", 1)
            entries[path] = meta.split()[2]
        return entries


# ---- what an environment's branch holds


def _files_below(root: Path, folder: str) -> list[str]:
    base = root / folder
    if not base.is_dir():
        return []
    return sorted(p.relative_to(root).as_posix() for p in base.rglob("*") if p.is_file())


@dataclass
class Closure:
    """What kustomize may read when it builds some kustomization roots of a project."""

    files: set[str] = field(default_factory=set)  # relative to the project
    remote: list[str] = field(default_factory=list)  # remote references met (remote source mode)


def _is_remote(reference: str) -> bool:
    """Whether kustomize fetches reference from elsewhere (GitHub, a mirror, any URL) instead of reading the tree."""
    if "://" in reference or reference.startswith("git@"):
        return True
    try:
        return parse_remote(reference) is not None
    except SourceError:
        return True


def kustomize_closure(root: Path, starts: Iterable[str]) -> Closure:
    """Every file the kustomizations at starts (folders relative to root) can read, following their local
    references: the files each names, and all files beside each kustomization, as vendoring copies them
    (upstream reads some indirectly: kustomizeconfig, params). Remote references are collected, not followed."""
    closure = Closure()
    seen: set[str] = set()
    stack = list(starts)
    while stack:
        folder = stack.pop()
        if folder in seen:
            continue
        seen.add(folder)
        directory = root / folder
        kustomization = find_kustomization(directory)
        if kustomization is None:
            raise PublishRefused(f"{folder} is used as a kustomization but has none")
        closure.files.update(p.relative_to(root).as_posix() for p in directory.iterdir() if p.is_file())
        document = load_plain(kustomization.read_text(encoding="utf-8")) or {}
        for field_name, reference in _local_references(document):
            if _is_remote(reference):
                closure.remote.append(reference)
                continue
            target = posixpath.normpath(posixpath.join(folder, reference))
            if posixpath.isabs(reference) or target == ".." or target.startswith("../"):
                raise PublishRefused(f"{kustomization.relative_to(root)}: {field_name} names {reference!r}, outside the project")
            path = root / target
            if path.is_dir():
                stack.append(target)
            elif path.is_file():
                closure.files.add(target)
            elif field_name != "patchesStrategicMerge":  # there, a string may be an inline patch
                hint = "; run `kfgen vendor` and commit sources.lock.json" if target.startswith("vendor/") else ""
                raise PublishRefused(f"{kustomization.relative_to(root)}: {field_name} names {reference!r}, which does not exist{hint}")
    return closure


def component_folders(root: Path, env_plan: EnvironmentPlan) -> list[str]:
    """The project folders of an environment's overlays and GitOps objects, and of its components' bases."""
    folders = [f"gitops/{env_plan.name}", f"overlays/{env_plan.name}"]
    folders += [f"base/{p.base}" for p in env_plan.components if (root / "base" / p.base).is_dir()]
    return folders


def overlay_files(root: Path, env_plan: EnvironmentPlan) -> dict[str, Path]:
    """The environment's GitOps objects, overlays and bases, and everything else they read (vendor/, SOPS
    folders), by path relative to the project."""
    files = {rel for folder in component_folders(root, env_plan) for rel in _files_below(root, folder)}
    files |= kustomize_closure(root, [f"overlays/{env_plan.name}"]).files
    return {rel: root / rel for rel in sorted(files)}


def hydrated_files(root: Path, plan: Plan, env_plans: list[EnvironmentPlan], staging: Path, source_cache: SourceCache,
                   build_cache: BuildCache | None, jobs: int | None, progress: Callable[[str], Progress | None] | None
                   ) -> dict[str, dict[str, Path]]:
    """Each environment's GitOps objects and its components built into rendered/<env>/<c>/manifests.yaml
    (written below staging by the hydrate code), by path relative to the project."""
    from .build import Builder, build_environment, build_tree, write_hydrated

    result: dict[str, dict[str, Path]] = {}
    with build_tree(root, plan.platform.source_mode, source_cache, plan.platform.mirrors) as tree, Builder(root, tree, build_cache) as builder:
        for env_plan in env_plans:
            build = build_environment(root, env_plan, jobs, progress(env_plan.name) if progress else None, tree, builder=builder)
            target = write_hydrated(build, staging / "rendered", plan.platform.file)
            files = {rel: root / rel for rel in _files_below(root, f"gitops/{env_plan.name}")}
            files.update({p.relative_to(staging).as_posix(): p for p in sorted(target.rglob("*")) if p.is_file()})
            result[env_plan.name] = dict(sorted(files.items()))
    return result


def published_json(environment: str, provenance: Provenance, plan: Plan) -> bytes:
    gitops = plan.platform.gitops
    data = {
        "environment": environment,
        "sourceCommit": provenance.source_commit,
        "specSha256": provenance.spec_digest.removeprefix("sha256:"),
        "kfgenVersion": provenance.kfgen_version,
        "engine": gitops.engine,
        "sourceMode": plan.platform.source_mode,
        "hydrated": gitops.hydrated,
        "sourceDirty": provenance.dirty,
    }
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def commit_message(environment: str, provenance: Provenance, files: int, hydrated: bool) -> str:
    what = "plain YAML per component" if hydrated else "overlays, bases and the sources they read"
    trailers = [f"{TRAILER_ENVIRONMENT}: {environment}", f"{TRAILER_SOURCE}: {provenance.source_commit}",
                f"{TRAILER_SPEC}: {provenance.spec_digest}", f"{TRAILER_VERSION}: {provenance.kfgen_version}"]
    if provenance.dirty:
        trailers.append(f"{TRAILER_DIRTY}: true")
    return (f"Publish {environment} from {provenance.source_commit[:12]}\n\n"
            f"What the GitOps controllers of environment {environment} read: {files} files ({what}).\n\n"
            + "\n".join(trailers) + "\n")


# ---- checks before publishing


def source_commit(git: Git) -> str:
    commit = git.commit_of("HEAD")
    if commit is None:
        raise PublishRefused("the repository has no commit to publish from; commit the project first")
    return commit


def uncommitted(git: Git, pathspecs: list[str]) -> list[str]:
    """Files below pathspecs (relative to git's folder) that differ from HEAD, untracked ones included."""
    status = git.run("status", "--porcelain=v1", "-z", "--untracked-files=all", "--", *pathspecs).stdout
    changed, entries = [], status.split("\0")
    index = 0
    while index < len(entries):
        entry = entries[index]
        if entry:
            changed.append(entry[3:])
            if entry[0] in "RC":  # a rename's source follows it
                index += 1
        index += 1
    return sorted(changed)


def feeding_pathspecs(root: Path, spec: Path, env_files: dict[str, dict[str, Path]], env_plans: list[EnvironmentPlan]) -> list[str]:
    """The project paths a publish reads: spec, catalog, lock, the environments' folders, and files they read
    elsewhere (vendor/ aside: it is not committed, and is checked against the lock instead)."""
    specs = [os.path.relpath(spec, root), "components", LOCK_FILE, MANIFEST]
    folders = sorted({f for env_plan in env_plans for f in component_folders(root, env_plan)})
    others = sorted({rel for files in env_files.values() for rel, path in files.items()
                     if path.is_relative_to(root) and not rel.startswith("vendor/")
                     and not any(rel.startswith(f + "/") for f in folders)})
    return specs + folders + others


# ---- the branch


def _identity(git: Git, commit: str) -> dict[str, str]:
    """Author and committer, names, emails and dates, of commit: a deploy commit gets its source commit's."""
    fields = git.run("show", "-s", "--format=%an%x00%ae%x00%ad%x00%cn%x00%ce%x00%cd", "--date=raw", commit).stdout.rstrip("\n").split("\0")
    keys = ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_AUTHOR_DATE", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "GIT_COMMITTER_DATE")
    return dict(zip(keys, fields, strict=True))


def tracking_ref(git: Git, branch: str) -> str | None:
    """A remote-tracking ref of branch: origin's, else the only remote's that has one."""
    refs = git.run("for-each-ref", "--format=%(refname)", "refs/remotes/").stdout.split()
    matching = [r for r in refs if r.removeprefix("refs/remotes/").split("/", 1)[-1] == branch]
    if f"refs/remotes/origin/{branch}" in matching:
        return f"refs/remotes/origin/{branch}"
    return matching[0] if len(matching) == 1 else None


def remote_heads(git: Git, remote: str, branches: list[str]) -> dict[str, str]:
    """The heads of branches on remote (those that exist there), fetched so that new commits can follow them."""
    listed = git.run("ls-remote", "--heads", remote, *(f"refs/heads/{b}" for b in branches), check=False)
    if listed.returncode != 0:
        raise GitFailed(f"cannot read the branches of {remote}: {listed.stderr.strip()}")
    heads = {}
    for line in listed.stdout.splitlines():
        sha, ref = line.split("\t", 1)
        if ref.removeprefix("refs/heads/") in branches:
            heads[ref.removeprefix("refs/heads/")] = sha
    missing = [b for b, sha in heads.items() if git.commit_of(sha) is None]
    if missing:
        git.run("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", remote, *(f"refs/heads/{b}" for b in missing))
    return heads


def _base_commit(git: Git, branch: str, local: str | None, remote: str | None, pushing: bool) -> str | None:
    """The commit a new publish follows: the local branch, or the remote's when it is ahead or the local one is
    missing. Without a push, a missing local branch falls back to a remote-tracking one."""
    if not pushing:
        if local:
            return local
        tracking = tracking_ref(git, branch)
        return git.commit_of(tracking) if tracking else None
    if remote and local and remote != local and not git.is_ancestor(remote, local) and git.is_ancestor(local, remote):
        return remote  # published elsewhere since: build on top of it
    return local or remote  # when both diverged, the push is refused and says so


def content_commit(git: Git, head: str) -> str:
    """The commit whose files the component Applications of head are pinned to: head itself, unless head is
    the pinning commit that follows a content commit (see pin_applications)."""
    message = git.run("log", "-1", "--format=%B", head).stdout
    for line in message.splitlines():
        key, _, value = line.partition(": ")
        if key == TRAILER_CONTENT and len(value.strip()) == 40:
            return value.strip()
    return head


def pin_applications(git: Git, entries: dict[str, str], applications: dict[str, Path], content: str,
                     message: str, identity: dict[str, str], staging: Path) -> str:
    """The commit after `content` whose component Applications target `content` itself instead of the branch.

    Argo CD's root Application applies the component Applications wave by wave, and waits for each wave's
    health. A component Application that follows the branch does not change when its files change, so the
    root has nothing to apply and every component syncs at once; pinned to the content commit, every
    publish changes each Application's targetRevision, the root applies them in wave order, and the
    Application health check waits until a component has synced that revision (gitops.APPLICATION_HEALTH)."""
    pinned = dict(entries)
    for tree_path, file in applications.items():
        header, _, _ = file.read_text(encoding="utf-8").partition("\napiVersion:")
        application = load_plain(file.read_text(encoding="utf-8"))
        application["spec"]["source"]["targetRevision"] = content
        rewritten = staging / ("pinned-" + tree_path.replace("/", "_"))
        rewritten.write_text((header + "\n" if header.startswith("#") else "") + dump(application), encoding="utf-8")
        pinned[tree_path] = git.hash_files([rewritten])[rewritten]
    tree = git.write_tree(pinned)
    body = (f"Pin the component Applications to {content[:12]}\n\n"
            "Each component Application targets the content commit, so that Argo CD's root Application applies\n"
            "a changed platform wave by wave.\n\n" + message.rstrip("\n").rpartition("\n\n")[2] + f"\n{TRAILER_CONTENT}: {content}\n")
    return git.run("commit-tree", "--no-gpg-sign", tree, "-p", content, "-F", "-", input=body, env=identity).stdout.strip()


def commit_environment(git: Git, branch: str, prefix: str, files: dict[str, Path], published: bytes, message: str,
                       identity: dict[str, str], parent: str | None, local: str | None, staging: Path,
                       applications: Iterable[str] = ()) -> tuple[str, bool]:
    """Commit files (project-relative -> file) and PUBLISHED.json below prefix on branch; return (head, changed).

    With `applications` (project-relative paths of Argo CD component Applications among files), the head is
    a second commit that pins them to the first (pin_applications)."""
    def at(rel: str) -> str:
        return posixpath.join(prefix, rel) if prefix else rel

    blobs = git.hash_files(files.values())
    entries = {at(rel): blobs[path] for rel, path in files.items()}
    published_path = staging / f"{branch.replace('/', '_')}-{PUBLISHED_FILE}"
    published_path.write_bytes(published)
    if parent is not None:
        before = git.tree_entries(content_commit(git, parent))
        before.pop(at(PUBLISHED_FILE), None)
        if before == entries:
            if local != parent:
                git.run("update-ref", "-m", "kfgen publish: follow the published head", f"refs/heads/{branch}", parent, local or "")
            return parent, False
    entries[at(PUBLISHED_FILE)] = git.hash_files([published_path])[published_path]
    tree = git.write_tree(entries)
    parents = ["-p", parent] if parent else []
    commit = git.run("commit-tree", "--no-gpg-sign", tree, *parents, "-F", "-", input=message, env=identity).stdout.strip()
    pinned = {at(rel): files[rel] for rel in applications}
    if pinned:
        commit = pin_applications(git, entries, pinned, commit, message, identity, staging)
    # The old value makes the move conditional: a branch moved meanwhile makes this fail instead of losing a commit.
    git.run("update-ref", "-m", "kfgen publish", f"refs/heads/{branch}", commit, local or "")
    return commit, True


def push(git: Git, remote: str, branches: list[str]) -> PushResult:
    """Fast-forward only: a remote branch that moved elsewhere refuses the push, and git says why."""
    refspecs = [f"refs/heads/{b}:refs/heads/{b}" for b in branches]
    result = git.run("push", "--porcelain", remote, *refspecs, check=False)
    return PushResult(remote, result.returncode == 0, (result.stderr.strip() + "\n" + result.stdout.strip()).strip())


def _repo_prefix(path: str) -> str:
    prefix = posixpath.normpath(path.strip() or ".")
    if prefix == ".":
        return ""
    if prefix.startswith("/") or prefix == ".." or prefix.startswith("../"):
        raise PublishRefused(f"gitops.path {path!r} is not a folder inside the repository")
    return prefix


def publish(root: Path, spec: Path, plan: Plan, rendered: RenderedTree, source_cache: SourceCache, build_cache: BuildCache | None,
            options: PublishOptions, progress: Callable[[str], Progress | None] | None = None) -> PublishReport:
    """Publish the environments options names (all by default) from the project at root; see the module's docstring.

    Refused (PublishRefused, exit 2) when the generated files drift from the spec, when the files a publish reads
    differ from the source commit (unless options.allow_dirty), or when vendor/ differs from its lock."""
    gitops = plan.platform.gitops
    names = list(options.environments) or [e.name for e in plan.environments]
    env_plans = [plan.environment(name) for name in dict.fromkeys(names)]
    if gitops.sync_from == "revision":
        return PublishReport(None, (), skipped=f"gitops.syncFrom is 'revision': the controllers follow {gitops.revision!r} itself, "
                                               "so there is no deploy branch to publish")
    top = Git(root).run("rev-parse", "--show-toplevel", check=False)
    if top.returncode != 0:
        raise PublishRefused(f"{root} is not in a git repository: {top.stderr.strip()}")
    git = Git(root)
    branches = {env_plan.name: gitops.branch_for(env_plan.name) for env_plan in env_plans}
    current = git.run("symbolic-ref", "--quiet", "HEAD", check=False).stdout.strip()
    for env, branch in branches.items():
        if git.run("check-ref-format", f"refs/heads/{branch}", check=False).returncode != 0:
            raise PublishRefused(f"environment {env}: {branch!r} is not a valid branch name")
        if current == f"refs/heads/{branch}":
            raise PublishRefused(f"environment {env} publishes to {branch}, the branch checked out here; check out another one")
    drifted = drift(rendered, root)
    if drifted:
        shown = ", ".join(drifted[:10]) + (f" and {len(drifted) - 10} more" if len(drifted) > 10 else "")
        raise PublishRefused(f"generated files differ from a fresh render of the spec ({shown}); run `kfgen render` and commit")
    commit = source_commit(git)
    hydrated = gitops.hydrated
    if plan.platform.source_mode == "vendored" and not hydrated:
        verify_vendor(root)  # a hydrated build checks it too (build_tree)
    with tempfile.TemporaryDirectory(prefix="kfgen-publish-") as scratch:
        staging = Path(scratch)
        started = time.perf_counter()
        if hydrated:
            env_files = hydrated_files(root, plan, env_plans, staging, source_cache, build_cache, options.jobs, progress)
        else:
            env_files = {env_plan.name: overlay_files(root, env_plan) for env_plan in env_plans}
        prepared = time.perf_counter() - started
        dirty = uncommitted(git, feeding_pathspecs(root, spec, env_files, env_plans))
        if dirty and not options.allow_dirty:
            shown = ", ".join(dirty[:10]) + (f" and {len(dirty) - 10} more" if len(dirty) > 10 else "")
            raise PublishRefused(f"uncommitted changes in files the publish reads ({shown}); commit them, or pass --allow-dirty")
        provenance = Provenance(commit, "sha256:" + hashlib.sha256(spec.read_bytes()).hexdigest(), __version__, bool(dirty))
        remote = remote_heads(git, options.push, list(branches.values())) if options.push else {}
        identity = _identity(git, commit)
        prefix = _repo_prefix(gitops.path)
        results = []
        for env_plan in env_plans:
            begin = time.perf_counter()
            branch, files = branches[env_plan.name], env_files[env_plan.name]
            local = git.commit_of(f"refs/heads/{branch}")
            parent = _base_commit(git, branch, local, remote.get(branch), options.push is not None)
            applications = [rel for rel in files if gitops.engine == "argocd"
                            and rel.startswith(f"gitops/{env_plan.name}/apps/") and rel != f"gitops/{env_plan.name}/apps/kustomization.yaml"]
            head, changed = commit_environment(
                git, branch, prefix, files, published_json(env_plan.name, provenance, plan),
                commit_message(env_plan.name, provenance, len(files) + 1, hydrated), identity, parent, local, staging, applications)
            share = prepared / len(env_plans)  # building or collecting files is shared; each gets its part
            results.append(PublishedBranch(env_plan.name, branch, head, parent, changed, len(files) + 1, time.perf_counter() - begin + share))
    pushed = push(git, options.push, list(branches.values())) if options.push else None
    return PublishReport(provenance, tuple(results), pushed)
