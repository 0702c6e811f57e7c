"""A check of unchanged inputs repeats the last report; any change to what a check reads runs it again."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import PROJECT, SHARED_CACHE, source_cache_dirs
from kfgen.buildcache import BuildCache
from kfgen.checkrecord import KFGEN_FOLDERS, CheckRecords
from kfgen.credentials import PREREQUISITES_DIR
from kfgen.schemas import SCHEMA_DIR

REPEATED = "nothing changed since the check of"


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    """A vendored, rendered project and its first check of `local`."""
    from helpers import TempProject

    project = TempProject(tmp_path_factory.mktemp("records") / "project")
    project.vendor()
    project.render()
    first = project.kfgen("check", "--env", "local")
    assert first.returncode == 0, first.stdout + first.stderr
    assert REPEATED not in first.stderr
    return project, first


def _check(project, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ, KFGEN_CACHE_DIR=str(SHARED_CACHE), **(env or {}))
    return subprocess.run([sys.executable, "-m", "kfgen", "check", "--env", "local", *args, "--project", str(project.root)],
                          cwd=project.root, capture_output=True, text=True, timeout=600, env=environment)


def test_an_unchanged_project_gets_the_same_report_back(checked):
    project, first = checked
    again = _check(project)
    assert REPEATED in again.stderr
    assert (again.returncode, again.stdout) == (first.returncode, first.stdout)


def test_a_repeated_check_loads_neither_the_project_nor_the_checks(checked):
    """What makes it cheap: no catalog, spec, schema validation, build or object check is imported."""
    project, _ = checked
    environment = dict(os.environ, KFGEN_CACHE_DIR=str(SHARED_CACHE))
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "kfgen", "check", "--env", "local", "--project", str(project.root)],
                            cwd=project.root, capture_output=True, text=True, timeout=600, env=environment)
    assert REPEATED in result.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "kfgen.checkrecord" in imported
    assert not imported & {"jsonschema", "yaml", "jinja2", "kfgen.catalog", "kfgen.spec", "kfgen.build", "kfgen.objects", "kfgen.policies"}


@pytest.mark.parametrize("change", ["generated file", "vendored file", "new catalog file", "spec", "policy"])
def test_a_change_to_any_input_runs_the_check_again(checked, change):
    project, _ = checked
    root = project.root
    targets = {
        "generated file": root / "overlays/local/dex/kustomization.yaml",
        "vendored file": next(p for p in sorted((root / "vendor").rglob("*.yaml"))),
        "new catalog file": root / "components/notes.txt",
        "spec": root / "platform.yaml",
        "policy": root / "policies/rbac.rego",
    }
    target = targets[change]
    original = target.read_bytes() if target.exists() else None
    try:
        target.write_bytes((original or b"") + b"\n# changed\n")
        result = _check(project)
        assert REPEATED not in result.stderr, change
        if change == "generated file":
            assert result.returncode == 1 and "drift: overlays/local/dex/kustomization.yaml" in result.stdout
        if change == "vendored file":
            assert result.returncode != 0 and "vendor/ does not match" in result.stderr
    finally:
        if original is None:
            target.unlink()
        else:
            target.write_bytes(original)
    assert REPEATED in _check(project).stderr  # back as it was: the first record applies again


def test_other_arguments_settings_and_no_cache_run_in_full(checked):
    project, _ = checked
    assert REPEATED not in _check(project, "--drift-only").stderr
    assert REPEATED not in _check(project, env={"KFGEN_SOME_SETTING": "1"}).stderr
    assert REPEATED not in _check(project, "--no-cache").stderr
    assert REPEATED in _check(project, "--drift-only").stderr


def test_a_failed_check_is_repeated_as_failed(checked):
    project, _ = checked
    target = project.root / "overlays/local/dex/kustomization.yaml"
    original = target.read_bytes()
    try:
        target.write_bytes(original + b"# edited by hand\n")
        first = _check(project)
        again = _check(project)
    finally:
        target.write_bytes(original)
    assert first.returncode == again.returncode == 1
    assert first.stdout == again.stdout and REPEATED in again.stderr


def test_a_changed_file_outside_the_project_that_the_check_read_runs_it_again(checked, tmp_path):
    """The Argo CD CRDs come from the source cache: a cache of one's own, searched first, changes them."""
    project, _ = checked
    argo_crds = "github.com/argoproj/argo-cd/v3.5.1/manifests/crds"
    own_cache = tmp_path / "cache"
    source = next(d / argo_crds for d in source_cache_dirs() if (d / argo_crds).is_dir())
    shutil.copytree(source, own_cache / argo_crds)
    caches = {"KFGEN_SOURCE_CACHE": os.pathsep.join([str(own_cache), *map(str, source_cache_dirs())])}
    assert REPEATED not in _check(project, env=caches).stderr
    assert REPEATED in _check(project, env=caches).stderr
    crd = sorted((own_cache / argo_crds).glob("*crd.yaml"))[0]
    crd.write_text(crd.read_text() + "# changed\n")
    assert REPEATED not in _check(project, env=caches).stderr


def test_a_project_that_changes_while_checked_leaves_no_record(tmp_path):
    root = tmp_path / "project"
    (root / "components").mkdir(parents=True)
    (root / "platform.yaml").write_text("a: 1\n")
    records = CheckRecords(BuildCache(tmp_path / "cache"), root, root / "platform.yaml", [])
    (root / "platform.yaml").write_text("a: 2\n")
    records.remember(0, "report\n", [])
    assert CheckRecords(BuildCache(tmp_path / "cache"), root, root / "platform.yaml", []).recall() is None
    assert CheckRecords(BuildCache(tmp_path / "cache"), root, root / "platform.yaml", []).key != records.key


def test_a_symlinked_folder_makes_a_project_unrecordable(tmp_path):
    root = tmp_path / "project"
    (root / "components").mkdir(parents=True)
    (root / "elsewhere").symlink_to(tmp_path, target_is_directory=True)
    records = CheckRecords(BuildCache(tmp_path / "cache"), root, root / "platform.yaml", [])
    assert records.key is None
    records.remember(0, "report\n", [])
    assert records.recall() is None


def test_the_fingerprint_covers_kfgens_own_data_folders():
    assert SCHEMA_DIR in KFGEN_FOLDERS and PREREQUISITES_DIR in KFGEN_FOLDERS
    assert all(folder.is_dir() for folder in KFGEN_FOLDERS)
    assert Path(PROJECT / "generator" / "kfgen") in KFGEN_FOLDERS
