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
