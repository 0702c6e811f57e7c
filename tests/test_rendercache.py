"""The rendered tree in the build cache: an entry is exactly what a fresh render gives, anything that can
change the render misses, and a template edited while it renders is not kept under the old key."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import TempProject
from kfgen import render as render_module
from kfgen import rendercache
from kfgen.buildcache import BuildCache
from kfgen.inputcache import load_inputs
from kfgen.plan import make_plan
from kfgen.rendercache import render_cached, render_key


def _inputs(project: TempProject, cache: BuildCache):
    inputs = load_inputs(project.root / "components", project.spec_path, "platform.yaml", cache)
    inputs.remember()
    return inputs


def _rendered(project: TempProject, cache: BuildCache):
    inputs = _inputs(project, cache)
    plan = make_plan(inputs.platform, inputs.catalog)
    return render_cached(plan, inputs), plan


def _template(project: TempProject) -> Path:
    return next((project.root / "components").rglob("*.j2"))


def test_a_kept_tree_is_the_fresh_render(project, cache, monkeypatch):
    first, plan = _rendered(project, cache)
    calls = []
    monkeypatch.setattr(render_module, "render", lambda p: calls.append(p) or pytest.fail("rendered again"))
    again, _ = _rendered(project, cache)
    assert calls == [] and again.files == first.files
    monkeypatch.undo()
    assert again.files == render_module.render(plan).files
    assert len(again.files) > 100


def test_an_edited_template_or_spec_renders_again(project, cache):
    first, _ = _rendered(project, cache)
    template = _template(project)
    template.write_text(template.read_text() + "{# edited #}\n")
    assert _rendered(project, cache)[0].files == first.files  # a comment renders to nothing: same tree, new key
    spec = project.spec_path.read_text()
    assert "domain: kubeflow.localtest.me" in spec
    project.spec_path.write_text(spec.replace("domain: kubeflow.localtest.me", "domain: kubeflow.example.test"))
    moved, _ = _rendered(project, cache)
    assert any(b"kubeflow.example.test" in data for data in moved.files.values())
    assert not any(b"kubeflow.localtest.me" in data for data in moved.files.values())


def test_changed_kfgen_code_misses(project, cache, tmp_path, monkeypatch):
    inputs = _inputs(project, cache)
    before = render_key(inputs.key)
    code = tmp_path / "kfgen"
    shutil.copytree(rendercache._PACKAGE, code, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(rendercache, "_PACKAGE", code)
    rendercache._code_digest.cache_clear()
    try:
        assert render_key(inputs.key) == before
        (code / "render.py").write_text((code / "render.py").read_text() + "\n# changed\n")
        rendercache._code_digest.cache_clear()
        assert render_key(inputs.key) != before
    finally:
        rendercache._code_digest.cache_clear()


def test_a_template_edited_while_rendering_is_not_kept(project, cache, monkeypatch):
    inputs = _inputs(project, cache)
    plan = make_plan(inputs.platform, inputs.catalog)
    template = _template(project)
    real = render_module.render

    def render_while_editing(plan, mirror_inputs=None):
        template.write_text(template.read_text() + "{# edited meanwhile #}\n")
        return real(plan, mirror_inputs)

    monkeypatch.setattr(render_module, "render", render_while_editing)
    render_cached(plan, inputs)
    assert cache.get(render_key(inputs.key)) is None


def test_a_corrupt_entry_renders_again(project, cache):
    first, _ = _rendered(project, cache)
    inputs = _inputs(project, cache)
    entry = cache._path(render_key(inputs.key))
    entry.write_bytes(entry.read_bytes().replace(b"kind: Kustomization", b"kind: Kustomisation", 1))
    again, _ = _rendered(project, cache)
    assert cache.corrupt == 1 and again.files == first.files
    # An entry whose frame is whole but whose body is not a tree (of another kfgen, say) is not trusted either.
    for body in (b"garbage", b"5 3\nab", b"1 1\n\xffx", b"999 1\nkustomization.yaml"):
        cache.put_bytes(render_key(inputs.key), body)
        assert _rendered(project, cache)[0].files == first.files


def test_check_answers_drift_from_the_kept_tree_without_rendering(project, tmp_path):
    """After `kfgen render`, `kfgen check --drift-only` renders nothing: it does not even import Jinja."""
    env = dict(os.environ, KFGEN_CACHE_DIR=str(tmp_path / "shared-cache"))
    subprocess.run([sys.executable, "-m", "kfgen", "render", "--project", str(project.root)], env=env, check=True,
                   capture_output=True, timeout=120)
    program = ("import sys, runpy\nsys.argv = ['kfgen', 'check', '--drift-only', '--project', sys.argv[1]]\n"
               "try:\n    runpy.run_module('kfgen', run_name='__main__')\nexcept SystemExit as end:\n    code = end.code\n"
               "print('jinja2 loaded:', 'jinja2' in sys.modules, file=sys.stderr)\nsys.exit(code)\n")
    result = subprocess.run([sys.executable, "-c", program, str(project.root)], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "jinja2 loaded: False" in result.stderr
