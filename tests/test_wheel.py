"""kfgen installed from its wheel, away from any checkout: it carries its data, validates and renders
exactly what the checkout renders."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from helpers import PROJECT, run_kfgen, tree_snapshot
from kfgen.data import FOLDER_NAMES, PACKAGED_DATA

pytestmark = pytest.mark.slow

# What the build reads. The wheel is built from a copy of them, so the build leaves nothing in the checkout.
BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "generator", "schemas", "prerequisites")
# What a project of kfgen's users holds: no schemas, which must come from the installed package.
PROJECT_INPUTS = ("platform.yaml", "components", "policies", "customizations")
NOT_BUILD_INPUTS = shutil.ignore_patterns("__pycache__", "*.egg-info")


def _copy(names: tuple[str, ...], destination: Path) -> None:
    destination.mkdir(parents=True)
    for name in names:
        source = PROJECT / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=NOT_BUILD_INPUTS)
        elif source.is_file():
            shutil.copy2(source, destination / name)


def _run(*command: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    _copy(BUILD_INPUTS, work / "source")
    # Without build isolation the build uses this environment's setuptools (pinned in the dev extra): no network.
    built = _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                 "--wheel-dir", work / "dist", work / "source")
    assert built.returncode == 0, built.stderr
    [found] = (work / "dist").glob("kfgen-*.whl")
    return found


@pytest.fixture(scope="module")
def virtualenv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtualenv with kfgen installed from the wheel. Its dependencies are this environment's, on the
    path after the virtualenv's own packages, so the install needs no network and kfgen is the wheel's."""
    venv = tmp_path_factory.mktemp("venv")
    assert _run(sys.executable, "-m", "venv", "--without-pip", venv).returncode == 0
    python = venv / "bin" / "python"
    installed = _run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", wheel)
    assert installed.returncode == 0, installed.stderr
    packages = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").stdout.strip())
    (packages / "dependencies-of-the-test.pth").write_text("\n".join(site.getsitepackages()) + "\n", encoding="utf-8")
    return venv


def _environment() -> dict[str, str]:
    """The test's environment (its source cache and tools), without anything that would point at the checkout."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KFGEN_CACHE_DIR")}


def test_the_wheel_holds_the_data_and_the_type_marker(wheel: Path):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert "kfgen/py.typed" in names
        for folder in FOLDER_NAMES:
            files = sorted(p for p in (PROJECT / folder).rglob("*") if p.is_file())
            assert files, folder
            for path in files:
                packaged = f"kfgen/{PACKAGED_DATA}/{path.relative_to(PROJECT).as_posix()}"
                assert archive.read(packaged) == path.read_bytes(), packaged


def test_the_installed_kfgen_is_the_wheels_and_reads_its_own_data(virtualenv: Path):
    program = ("import kfgen, kfgen.data as d, kfgen.checkrecord as c\n"
               "print(kfgen.__file__, d.SOURCE_TREE, d.SCHEMAS, d.PREREQUISITES, *c.KFGEN_FOLDERS, sep='\\n')")
    shown = _run(virtualenv / "bin" / "python", "-c", program, cwd=virtualenv, env=_environment())
    assert shown.returncode == 0, shown.stderr
    module, source_tree, schemas, prerequisites, *fingerprinted = shown.stdout.splitlines()
    package = Path(module).parent
    assert package.is_relative_to(virtualenv)
    assert source_tree == "None"
    assert Path(schemas) == package / PACKAGED_DATA / "schemas" and (Path(schemas) / "platform.schema.json").is_file()
    assert Path(prerequisites) == package / PACKAGED_DATA / "prerequisites" and Path(prerequisites).is_dir()
    assert fingerprinted == [str(package)]  # a check's fingerprint covers the data inside the package


def test_the_installed_kfgen_validates_and_renders_what_the_checkout_renders(virtualenv: Path, tmp_path: Path):
    installed, checkout = tmp_path / "installed", tmp_path / "checkout"
    _copy(PROJECT_INPUTS, installed)
    _copy(PROJECT_INPUTS, checkout)
    kfgen = virtualenv / "bin" / "kfgen"
    for verb in ("validate", "render"):
        result = _run(kfgen, verb, cwd=installed, env=_environment())
        assert result.returncode == 0, f"kfgen {verb}: {result.stderr}"
    reference = run_kfgen("render", "--project", str(checkout), cwd=checkout)
    assert reference.returncode == 0, reference.stderr

    def rendered(root: Path) -> dict[str, bytes]:
        inputs = PROJECT_INPUTS + (".kfgen",)
        return {name: data for name, data in tree_snapshot(root).items() if Path(name).parts[0] not in inputs}

    files = rendered(installed)
    assert {"kustomization.yaml", "generated-files.json"} <= files.keys()
    assert any(name.startswith("base/") for name in files) and any(name.startswith("overlays/") for name in files)
    assert files == rendered(checkout)
