"""Shared fixtures and hooks: temporary copies of the project, builds made once per session, the test
control plane. The helpers they use, which tests import too, are in helpers.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from helpers import TempProject, spec_for_release
from kfgen.build import EnvironmentBuild
from kfgen.buildcache import BuildCache


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., TempProject]:
    counter = iter(range(1000))

    def make(spec: dict[str, Any] | None = None) -> TempProject:
        return TempProject(tmp_path / f"project-{next(counter)}", spec)

    return make


@pytest.fixture
def project(tmp_path: Path) -> TempProject:
    """A copy of the shipped project's inputs (a test module may define a project of its own)."""
    return TempProject(tmp_path / "project")


@pytest.fixture
def cache(tmp_path: Path) -> BuildCache:
    """An empty build cache of the test's own."""
    return BuildCache(tmp_path / "cache")


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str, bool], EnvironmentBuild]:
    """Builds of (release, environment, all components) made once per test session."""
    cache: dict[tuple[str, str, bool], EnvironmentBuild] = {}
    projects: dict[tuple[str, bool], TempProject] = {}

    def get(release: str, env: str, all_components: bool = False) -> EnvironmentBuild:
        key = (release, env, all_components)
        if key not in cache:
            if (release, all_components) not in projects:
                root = tmp_path_factory.mktemp(f"built-{release}-{'all' if all_components else 'shipped'}")
                project = TempProject(root / "project", spec_for_release(release, all_components))
                project.vendor()
                project.render()
                projects[(release, all_components)] = project
            cache[key] = projects[(release, all_components)].build(env)
        return cache[key]

    get.projects = projects  # the rendered projects, by (release, all components)
    return get


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that starts the test control plane, through the fixture below, is a `controlplane` test."""
    for item in items:
        if "control_plane" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.controlplane)


@pytest.fixture(scope="session")
def control_plane():
    """A real kube-apiserver and etcd (tests/controlplane.py), started once per session; `make controlplane` builds them."""
    from controlplane import ControlPlane, ControlPlaneError, binary

    try:
        binary("KFGEN_KUBE_APISERVER", "kube-apiserver")
        binary("KFGEN_ETCD", "etcd")
    except ControlPlaneError as error:
        pytest.fail(str(error), pytrace=False)
    with ControlPlane() as plane:
        yield plane
