"""Pull-request review: kfgen diff between revisions, drift, and kfgen upgrade between releases."""

from __future__ import annotations

import json
import subprocess

import pytest

from helpers import PROJECT, shipped_spec, tree_snapshot
from kfgen.diff import FieldChange, compare, field_changes, format_markdown

LOCAL_ONLY_COMMENTED = (PROJECT / "platform.yaml").read_text().split("\nenvironments:\n")[0].replace(
    "  environments: [staging, prod]\n", "") + """
environments:
# the only environment of this test platform
- name: local
  stage: local
  cluster: {name: kind-kubeflow, provider: kind}
  domain: kubeflow.localtest.me
  tls:
    mode: self-signed
  secrets:
    backend: local
  identity:
    staticUsers:
    - {email: ada@example.com, username: ada}
"""


def _git(root, *args):
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


@pytest.fixture
def repo(make_project):
    """A git repository holding a one-environment platform, committed."""
    project = make_project()
    project.spec_path.write_text(LOCAL_ONLY_COMMENTED)
    _git(project.root, "init", "-q", "-b", "main")
    _git(project.root, "-c", "user.name=t", "-c", "user.email=t@example.com", "add", "-A")
    _git(project.root, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "platform")
    return project


def test_field_changes_name_each_leaf():
    old = {"spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "a", "image": "x:1"}]}}}}
    new = {"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "a", "image": "x:2"}]}}}}
    assert field_changes(old, new) == [
        FieldChange("spec.replicas", 1, 2),
        FieldChange("spec.template.spec.containers[name=a].image", "x:1", "x:2"),
    ]


def test_markdown_fits_a_comment_and_says_what_was_cut():
    many = {"local": {f"c{i:03d}": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"m{j}", "namespace": "n"},
                                     "data": {"k": "x" * 200}} for j in range(20)] for i in range(600)}}
    text = format_markdown(compare({}, many), limit=65_000)
    assert len(text) <= 65_000
    assert "component sections were cut" in text
    assert "| local | c000 | 20 | 0 | 0 |" in text


def test_disabling_a_component_removes_exactly_its_objects(repo, built):
    before = tree_snapshot(repo.root)
    spec_text = repo.spec_path.read_text().replace("  model-registry:\n    enabled: true\n",
                                                   "  model-registry:\n    enabled: true\n  katib:\n    enabled: false\n")
    repo.spec_path.write_text(spec_text)
    result = repo.kfgen("--output", "json", "diff", "--base", "HEAD")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert [(c["environment"], c["component"]) for c in report["components"]] == [("local", "katib")]
    katib = report["components"][0]
    assert katib["added"] == [] and katib["changed"] == []
    expected = next(c for c in built("26.03", "local").components if c.name == "katib").objects
    assert len(katib["removed"]) == len(expected) == report["removed"]
    # Nothing in the working tree was touched, and no worktree is left behind.
    after = {path: data for path, data in tree_snapshot(repo.root).items() if not path.startswith(".kfgen/")}
    after["platform.yaml"] = before["platform.yaml"]
    assert after == before  # the build cache in .kfgen/ aside
    worktrees = subprocess.run(["git", "-C", str(repo.root), "worktree", "list"], capture_output=True, text=True).stdout
    assert len(worktrees.strip().splitlines()) == 1


def test_no_change_exits_zero_and_markdown_says_so(repo):
    result = repo.kfgen("diff", "--base", "HEAD", "--head", "HEAD", "--format", "markdown")
    assert result.returncode == 0, result.stderr
    assert "No object changes." in result.stdout


def test_edited_generated_file_is_drift(make_project):
    project = make_project()
    assert project.kfgen("render").returncode == 0
    edited = project.root / "overlays/prod/pipelines/replicas.yaml"
    edited.write_text(edited.read_text().replace("replicas: 3", "replicas: 5"))
    (project.root / "overlays/local/katib/kustomization.yaml").unlink()
    result = project.kfgen("check", "--drift-only")
    assert result.returncode == 1
    assert "overlays/prod/pipelines/replicas.yaml" in result.stdout
    assert "overlays/local/katib/kustomization.yaml" in result.stdout
    github = project.kfgen("--output", "github", "check", "--drift-only")
    assert "::error file=overlays/prod/pipelines/replicas.yaml::" in github.stdout


def test_upgrade_from_v1_11_0_keeps_the_spec_byte_for_byte_but_the_release(make_project):
    project = make_project()
    original = LOCAL_ONLY_COMMENTED.replace('version: "26.03"        #', 'version: "v1.11.0"       #')
    assert original != LOCAL_ONLY_COMMENTED
    project.spec_path.write_text(original)
    result = project.kfgen("upgrade", "--to", "26.03")
    assert result.returncode == 0, result.stderr
    upgraded = project.spec_path.read_text()
    changed = [(a, b) for a, b in zip(original.splitlines(), upgraded.splitlines(), strict=True) if a != b]
    assert changed == [('  version: "v1.11.0"       # a kubeflow/manifests release; "v1.11.0" also works',
                        '  version: "26.03"         # a kubeflow/manifests release; "v1.11.0" also works')]
    assert "# the only environment of this test platform" in upgraded
    assert "moved from Kubeflow v1.11.0 to 26.03" in result.stdout
    assert "local/pipelines:" in result.stdout  # KFP 2.15 -> 2.16 images, for one
    assert "kfp-api-server:2.16.0" in result.stdout


def test_upgrade_refuses_an_unknown_release_and_leaves_the_spec(make_project):
    project = make_project()
    before = project.spec_path.read_bytes()
    result = project.kfgen("upgrade", "--to", "v9.9")
    assert result.returncode == 2 and "unknown Kubeflow release 'v9.9'" in result.stderr
    assert project.spec_path.read_bytes() == before
    assert shipped_spec()["kubeflow"]["version"] == "26.03"
