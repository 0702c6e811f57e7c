"""The validated catalog and spec in the build cache: a stored entry is exactly what a fresh load gives,
anything that can change that misses, and nothing invalid is ever stored."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import PROJECT, TempProject, shipped_spec
from kfgen import inputcache
from kfgen.buildcache import BuildCache
from kfgen.catalog import load_catalog
from kfgen.errors import CatalogError, SpecError
from kfgen.inputcache import catalog_key, load_inputs, spec_key
from kfgen.spec import load_platform


def _load(project: TempProject, cache: BuildCache):
    inputs = load_inputs(project.root / "components", project.spec_path, "platform.yaml", cache)
    inputs.remember()
    return inputs


def _entries(cache: BuildCache) -> list[Path]:
    return sorted(cache.directory.rglob("*.yaml")) if cache.directory.exists() else []


def test_a_stored_catalog_and_spec_are_what_a_fresh_load_gives(project, cache, tmp_path):
    first = _load(project, cache)
    assert len(_entries(cache)) == 2 and cache.hits == 0
    again = _load(project, cache)
    assert cache.hits == 2 and not again.unsaved
    fresh = load_catalog(project.root / "components")
    assert again.catalog == fresh and again.platform == load_platform(project.spec_path, fresh, "platform.yaml")
    assert first.catalog == again.catalog and first.platform == again.platform
    # Keys hold contents, not places: a checkout elsewhere gets the entry with its own paths.
    elsewhere = TempProject(tmp_path / "elsewhere")
    moved = _load(elsewhere, cache)
    assert cache.hits == 4
    assert moved.catalog == load_catalog(elsewhere.root / "components")
    assert all(c.folder.is_relative_to(elsewhere.root) for c in moved.catalog.components.values())


def test_every_change_below_components_misses(project):
    components = project.root / "components"
    seen = {catalog_key(components)}

    def changed() -> None:
        key = catalog_key(components)
        assert key is not None and key not in seen
        seen.add(key)

    entry = components / "dex" / "component.yaml"
    entry.write_bytes(entry.read_bytes() + b"\n")
    changed()
    (components / "dex" / "notes.txt").write_text("an added file\n")
    changed()
    (components / "dex" / "notes.txt").rename(components / "dex" / "other.txt")
    changed()
    (components / "empty").mkdir()  # loading reports a folder without component.yaml: it must not be hidden
    changed()
    (components / "empty").rmdir()
    (components / "empty.txt").write_bytes(b"")
    changed()


def test_a_changed_kfgen_source_or_schema_misses(project, tmp_path, monkeypatch):
    components = project.root / "components"
    before = catalog_key(components)
    code = tmp_path / "kfgen"
    shutil.copytree(inputcache._KFGEN, code, ignore=shutil.ignore_patterns("__pycache__"))
    schemas = tmp_path / "schemas"
    shutil.copytree(inputcache.SCHEMA_DIR, schemas)
    monkeypatch.setattr(inputcache, "_KFGEN", code)
    monkeypatch.setattr(inputcache, "SCHEMA_DIR", schemas)
    inputcache._code_digest.cache_clear()
    try:
        assert catalog_key(components) == before
        for name in inputcache.CATALOG_CODE:
            (code / name).write_text((code / name).read_text() + "\n# changed\n")
            inputcache._code_digest.cache_clear()
            assert catalog_key(components) != before, name
            before = catalog_key(components)
        (schemas / "component.schema.json").write_text((schemas / "component.schema.json").read_text() + "\n")
        inputcache._code_digest.cache_clear()
        assert catalog_key(components) != before
        spec_before = spec_key(project.spec_path, "platform.yaml", before)
        (code / "spec.py").write_text((code / "spec.py").read_text() + "\n# changed\n")
        inputcache._code_digest.cache_clear()
        assert spec_key(project.spec_path, "platform.yaml", before) != spec_before
    finally:
        inputcache._code_digest.cache_clear()


def test_the_keys_cover_every_kfgen_module_loading_runs():
    """A module the loaders import but the keys leave out could change what loads without a miss."""
    program = ("import sys\nfrom pathlib import Path\n"
               "from kfgen.catalog import load_catalog\nfrom kfgen.spec import load_platform\n"
               f"catalog = load_catalog(Path({str(PROJECT / 'components')!r}))\n"
               f"load_platform(Path({str(PROJECT / 'platform.yaml')!r}), catalog)\n"
               "print(' '.join(sorted(m.split('.', 1)[1] + '.py' for m in sys.modules if m.startswith('kfgen.'))))\n")
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120, check=True)
    used = set(result.stdout.split())
    assert used <= set(inputcache.CATALOG_CODE + inputcache.SPEC_CODE), used


def test_a_changed_spec_or_name_misses_and_loads_the_new_values(project, cache):
    _load(project, cache)
    spec = shipped_spec()
    spec["name"] = "renamed"
    project.write_spec(spec)
    changed = load_inputs(project.root / "components", project.spec_path, "platform.yaml", cache)
    assert cache.hits == 1 and len(changed.unsaved) == 1  # the catalog came from the cache, the spec did not
    assert changed.platform.name == "renamed"
    shown_elsewhere = load_inputs(project.root / "components", project.spec_path, "other.yaml", cache)
    assert shown_elsewhere.platform.file == "other.yaml" and len(shown_elsewhere.unsaved) == 1


def test_an_invalid_catalog_is_never_stored(project, cache):
    entry = project.root / "components" / "dex" / "component.yaml"
    entry.write_text(entry.read_text().replace("namespace:", "namespaces:", 1))
    for _ in range(2):
        with pytest.raises(CatalogError):
            _load(project, cache)
    assert _entries(cache) == []


def test_an_invalid_spec_stores_nothing_not_even_the_valid_catalog(project, cache):
    project.spec_path.write_text(project.spec_path.read_text() + "bogus: 1\n")
    with pytest.raises(SpecError):
        _load(project, cache)
    assert _entries(cache) == []


def test_the_cli_reports_a_bad_catalog_on_every_run(project, tmp_path):
    entry = project.root / "components" / "dex" / "component.yaml"
    entry.write_text(entry.read_text().replace("namespace:", "namespaces:", 1))
    env = dict(os.environ, KFGEN_CACHE_DIR=str(tmp_path / "cache"))
    runs = [subprocess.run([sys.executable, "-m", "kfgen", "validate", "--project", str(project.root)], env=env,
                           capture_output=True, text=True, timeout=120) for _ in range(2)]
    assert [r.returncode for r in runs] == [2, 2]
    assert runs[0].stderr == runs[1].stderr and "components/dex/component.yaml:" in runs[0].stderr
    assert not (tmp_path / "cache").exists()


def test_a_corrupt_or_foreign_entry_is_loaded_afresh(project, cache, tmp_path):
    _load(project, cache)
    for entry in _entries(cache):
        entry.write_bytes(entry.read_bytes()[:-10])
    again = _load(project, cache)
    assert cache.corrupt == 2 and again.catalog == load_catalog(project.root / "components")
    # An entry that would construct anything but the catalog's and spec's dataclasses is refused unread.
    marker = tmp_path / "ran"

    class Hostile:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    key = catalog_key(project.root / "components")
    cache.put_bytes(key, pickle.dumps(Hostile()))
    assert _load(project, cache).catalog == again.catalog
    assert not marker.exists()


def test_a_catalog_with_symbolic_links_is_loaded_afresh_every_time(project, cache):
    components = project.root / "components"
    (components / "dex" / "linked.txt").symlink_to(components / "releases.yaml")
    assert catalog_key(components) is None
    _load(project, cache)
    assert _entries(cache) == []


def test_no_cache_leaves_the_cache_alone(project, tmp_path):
    project.kfgen("render")
    cache = tmp_path / "own-cache"
    env = dict(os.environ, KFGEN_CACHE_DIR=str(cache))
    result = subprocess.run([sys.executable, "-m", "kfgen", "check", "--drift-only", "--no-cache", "--project", str(project.root)],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert not cache.exists()
