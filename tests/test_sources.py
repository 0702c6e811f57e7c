"""Sources: remote references, vendoring from the real cache, the lock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from helpers import source_cache_dirs
from kfgen.errors import SourceError
from kfgen.refs import ReleaseFile, RemoteDir, parse_remote
from kfgen.sources import LOCK_FILE, TREE_ENTRY, SourceCache, find_kustomization, vendor, verify_vendor, write_lock

MANIFESTS = ("github.com", "kubeflow", "manifests")
PIPELINES = RemoteDir(*MANIFESTS, "26.03", "applications/pipeline/overlays")
TRAINER = RemoteDir(*MANIFESTS, "26.03", "applications/trainer/overlays")
LWS_USER = RemoteDir(*MANIFESTS, "26.03", "applications/trainer/upstream/third-party/leaderworkerset")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://github.com/kubernetes-sigs/lws//config/default?ref=v0.7.0",
         RemoteDir("github.com", "kubernetes-sigs", "lws", "v0.7.0", "config/default")),
        ("https://github.com/argoproj/argo-workflows/manifests/base/crds/minimal?ref=v3.7.3",
         RemoteDir("github.com", "argoproj", "argo-workflows", "v3.7.3", "manifests/base/crds/minimal")),
        ("https://github.com/kubernetes-sigs/jobset/releases/download/v0.10.1/manifests.yaml",
         ReleaseFile("github.com", "kubernetes-sigs", "jobset", "v0.10.1", "manifests.yaml")),
        ("../base", None),
        ("deployment.yaml", None),
    ],
)
def test_parse_remote(text, expected):
    assert parse_remote(text) == expected


@pytest.mark.parametrize("text", [
    "https://github.com/owner/repo//../../etc?ref=v1",
    "https://github.com/owner/..//x?ref=v1",
    "https://github.com/o/r/releases/download/../x.yaml",
    "ftp://example.com/thing",
])
def test_unsafe_or_unsupported_remote_references_are_refused(text):
    with pytest.raises(SourceError):
        parse_remote(text)


@pytest.fixture(scope="module")
def vendored(tmp_path_factory) -> tuple[Path, list]:
    root = tmp_path_factory.mktemp("vendored")
    entries = vendor([PIPELINES, TRAINER], SourceCache(source_cache_dirs()), root / "vendor")
    write_lock(root / LOCK_FILE, entries)
    return root, entries


def _kustomizations(vendor_dir: Path):
    for path in vendor_dir.rglob("kustomization.yaml"):
        yield path, yaml.safe_load(path.read_text()) or {}


def test_vendoring_rewrites_nested_remote_directories_to_local_paths(vendored):
    root, _ = vendored
    vendor_dir = root / "vendor"
    argo_base = vendor_dir / "github.com/kubeflow/manifests/26.03/applications/pipeline/upstream/third-party/argo/base"
    resources = yaml.safe_load((argo_base / "kustomization.yaml").read_text())["resources"]
    local = [r for r in resources if "argo-workflows" in r]
    assert local, resources
    for reference in local:
        assert not reference.startswith("https://")
        target = (argo_base / reference).resolve()
        assert target.is_relative_to(vendor_dir.resolve())
        assert find_kustomization(target) is not None
    for path, kustomization in _kustomizations(vendor_dir):
        for entry in kustomization.get("resources") or []:
            assert "://" not in entry, f"{path} still names {entry}"


def test_vendoring_copies_release_files_inside_the_kustomization_root(vendored):
    root, _ = vendored
    jobset = root / "vendor/github.com/kubeflow/manifests/26.03/applications/trainer/upstream/third-party/jobset"
    resources = yaml.safe_load((jobset / "kustomization.yaml").read_text())["resources"]
    assert resources == ["localized-files/github.com/kubernetes-sigs/jobset/releases/download/v0.10.1/manifests.yaml"]
    assert (jobset / resources[0]).is_file()


def test_vendored_tree_builds_under_the_default_load_restrictor(vendored):
    import subprocess

    from helpers import PROJECT
    root, _ = vendored
    kustomize = str(PROJECT / ".tools/bin/kustomize")
    for source in (PIPELINES, TRAINER):
        result = subprocess.run([kustomize, "build", str(root / "vendor" / source.relpath)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-2000:]
        assert "kind: CustomResourceDefinition" in result.stdout


def test_lock_records_every_source_with_a_digest(vendored):
    root, _entries = vendored
    lock = json.loads((root / LOCK_FILE).read_text())["sources"]
    sources = {(e["source"], e["ref"]) for e in lock}
    assert ("github.com/kubeflow/manifests", "26.03") in sources
    assert ("github.com/argoproj/argo-workflows", "v3.7.3") in sources
    assert ("github.com/kubernetes-sigs/jobset/releases/download/manifests.yaml", "v0.10.1") in sources
    assert all(len(e["sha256"]) == 64 and e["files"] > 0 for e in lock)
    assert lock[-1]["source"] == TREE_ENTRY


def test_vendoring_is_deterministic(vendored, tmp_path):
    _, entries = vendored
    again = vendor([TRAINER, PIPELINES], SourceCache(source_cache_dirs()), tmp_path / "vendor")
    assert again == entries


def test_tampered_vendor_tree_is_refused(vendored, tmp_path):
    import shutil
    root, _ = vendored
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    verify_vendor(copy)
    victim = next((copy / "vendor").rglob("*.yaml"))
    victim.write_text(victim.read_text() + "\n# edited\n")
    with pytest.raises(SourceError, match="does not match"):
        verify_vendor(copy)


def test_source_missing_from_every_cache_is_a_clear_error(tmp_path):
    missing = RemoteDir(*MANIFESTS, "v0.0.1", "example")
    with pytest.raises(SourceError, match=r"is in no source cache \(searched: "):
        vendor([missing], SourceCache(source_cache_dirs()), tmp_path / "vendor")
    assert not (tmp_path / "vendor").exists()
    assert not list(tmp_path.iterdir())


def test_nested_remote_directory_from_another_repository(tmp_path):
    """Trainer's LeaderWorkerSet comes from its own repository at v0.7.0, with further local bases."""
    entries = vendor([LWS_USER], SourceCache(source_cache_dirs()), tmp_path / "vendor")
    assert ("github.com/kubernetes-sigs/lws", "v0.7.0") in {(e.source, e.ref) for e in entries}
    lws = tmp_path / "vendor/github.com/kubernetes-sigs/lws/v0.7.0/config"
    assert find_kustomization(lws / "default") is not None
    assert find_kustomization(lws / "crd") is not None  # reached through ../crd from config/default
    user = tmp_path / "vendor" / LWS_USER.relpath / "kustomization.yaml"
    assert yaml.safe_load(user.read_text())["resources"] == ["../../../../../../../../kubernetes-sigs/lws/v0.7.0/config/default"]
