"""Fixtures of the end-to-end suite. A cluster takes seconds to start: one per test module."""

from __future__ import annotations

import pytest

from e2e.cluster import Cluster, ClusterError


@pytest.fixture(scope="module")
def cluster():
    """A running Cluster (e2e/cluster.py) for the tests of one module; `make e2e-tools` builds its binaries."""
    try:
        started = Cluster().start()
    except ClusterError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield started
    finally:
        started.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """With xdist (`-n 2 --dist loadgroup`; `make test` runs this suite in one process) the tests of a module
    share its cluster, so they stay on one worker, unless a test names a group of its own (one per engine)."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
