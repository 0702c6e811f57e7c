"""Internal certificate authorities the platform trusts: a ConfigMap of the environment's CA certificates in
each namespace that needs it, mounted into the workloads the catalog names, and pointed at in the way
each one's runtime reads extra roots.

Go reads the system bundle and then every file of SSL_CERT_DIR, so setting it adds roots without losing
the public ones; Node adds NODE_EXTRA_CA_CERTS to its own. A runtime without such a switch (Python's
requests replaces its bundle) is not listed in the catalog: there, trust is the image's business.
"""

from __future__ import annotations

from typing import Any

from .catalog import Component
from .yamlio import Manifest

CONFIGMAP = "kfgen-trusted-ca"
KEY = "ca.crt"
MOUNT = "/etc/kfgen/trusted-ca"
RUNTIME_ENV = {
    "go": {"name": "SSL_CERT_DIR", "value": MOUNT},
    "node": {"name": "NODE_EXTRA_CA_CERTS", "value": f"{MOUNT}/{KEY}"},
}


def trust_configmaps(component: Component, certificates: str) -> list[Manifest]:
    """The CA ConfigMap in every namespace of the component's trusting workloads."""
    namespaces = sorted({w.namespace for w in component.trust})
    return [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": CONFIGMAP, "namespace": namespace},
             "data": {KEY: certificates}} for namespace in namespaces]


def trust_patches(component: Component) -> list[tuple[str, Manifest, dict[str, str]]]:
    """(file name, strategic-merge patch, target) mounting the CAs into each trusting workload."""
    patches = []
    for workload in component.trust:
        pod: dict[str, Any] = {
            "volumes": [{"name": CONFIGMAP, "configMap": {"name": CONFIGMAP}}],
            "containers": [{"name": workload.container,
                            "volumeMounts": [{"name": CONFIGMAP, "mountPath": MOUNT, "readOnly": True}],
                            "env": [dict(RUNTIME_ENV[workload.runtime])]}],
        }
        body = {"apiVersion": "apps/v1", "kind": workload.kind, "metadata": {"name": workload.name, "namespace": workload.namespace},
                "spec": {"template": {"spec": pod}}}
        patches.append((f"trusted-ca-{workload.kind.lower()}-{workload.name}.yaml", body,
                        {"group": "apps", "kind": workload.kind, "name": f"^{workload.name}$"}))
    return patches
