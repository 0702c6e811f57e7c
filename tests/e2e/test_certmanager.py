"""cert-manager's real controller issues a self-signed certificate on the test cluster, through the
ClusterIssuer that kubeflow/manifests 26.03 ships, with the CRDs of the same release.

The CRDs come from the source cache's cert-manager.yaml (what kubeflow/manifests vendors); only the
CustomResourceDefinitions are applied: no webhook or cainjector runs here (see e2e/certmanager.py).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.certmanager import CRDS, CertManager
from e2e.cluster import Cluster

pytestmark = pytest.mark.e2e

PROJECT = Path(__file__).resolve().parents[2]
CERT_MANAGER = PROJECT.parent / "shared" / "upstream" / "github.com" / "kubeflow" / "manifests" / "26.03" / "common" / "cert-manager"
UPSTREAM_YAML = CERT_MANAGER / "base" / "upstream" / "cert-manager.yaml"
CLUSTER_ISSUER = CERT_MANAGER / "overlays" / "kubeflow" / "cluster-issuer.yaml"
NAMESPACE = "e2e-certs"


@dataclass
class Stack:
    cluster: Cluster
    cert_manager: CertManager


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    # The controller is supervised from the start, before its CRDs exist, as on a cluster being bootstrapped.
    with Cluster() as cluster, CertManager(cluster) as cert_manager:
        yield Stack(cluster, cert_manager)


def upstream_crds() -> list[dict[str, Any]]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(UPSTREAM_YAML, encoding="utf-8") as handle:
        documents = [d for d in yaml.load_all(handle, Loader=loader) if d]
    return [d for d in documents if d.get("kind") == "CustomResourceDefinition"]


def apply(cluster: Cluster, *objects: dict[str, Any]) -> None:
    # Server-side: cert-manager's CRDs are larger than the annotation a client-side apply would keep.
    cluster.kubectl("apply", "--server-side", "--field-manager=kfgen-e2e", "-f", "-", input="\n".join(json.dumps(o) for o in objects))


def install(stack: Stack) -> None:
    """cert-manager's CRDs, Kubeflow's self-signing ClusterIssuer and the test namespace (idempotent)."""
    apply(stack.cluster, *upstream_crds())
    stack.cert_manager.wait_running()
    stack.cluster.kubectl("apply", "-f", str(CLUSTER_ISSUER))
    apply(stack.cluster, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})


def certificate(name: str, issuer: str, dns_name: str) -> dict[str, Any]:
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "secretName": f"{name}-tls",
            "commonName": dns_name,
            "dnsNames": [dns_name],
            "issuerRef": {"kind": "ClusterIssuer", "name": issuer},
            "privateKey": {"algorithm": "ECDSA", "size": 256},
        },
    }


def issued_secret(cluster: Cluster, name: str) -> dict[str, Any]:
    result = cluster.kubectl("-n", NAMESPACE, "get", "secret", name, "-o", "json")
    return json.loads(result.stdout)


def certificate_text(secret: dict[str, Any]) -> str:
    pem = base64.b64decode(secret["data"]["tls.crt"])
    return subprocess.run(["openssl", "x509", "-noout", "-text"], input=pem, capture_output=True, check=True).stdout.decode()


def subject_and_issuer(secret: dict[str, Any]) -> dict[str, str]:
    pem = base64.b64decode(secret["data"]["tls.crt"])
    argv = ["openssl", "x509", "-noout", "-subject", "-issuer", "-nameopt", "RFC2253"]
    lines = subprocess.run(argv, input=pem, capture_output=True, check=True).stdout.decode().splitlines()
    return dict(line.split("=", 1) for line in lines)


def test_the_controller_starts_once_its_crds_exist_and_issues_a_certificate(stack: Stack) -> None:
    cluster, cert_manager = stack.cluster, stack.cert_manager
    assert cert_manager.starts == 0, "started before cert-manager's CRDs existed"

    crds = upstream_crds()
    assert sorted(c["metadata"]["name"] for c in crds) == sorted(CRDS)
    assert {c["metadata"]["labels"]["app.kubernetes.io/version"] for c in crds} == {"v1.19.4"}
    install(stack)
    apply(cluster, certificate("web", "kubeflow-self-signing-issuer", "web.e2e-certs.svc"))

    issued = cert_manager.wait_certificate_ready(NAMESPACE, "web")
    assert issued["status"]["revision"] == 1
    issuer = json.loads(cluster.kubectl("get", "clusterissuer", "kubeflow-self-signing-issuer", "-o", "json").stdout)
    assert {c["type"]: c["status"] for c in issuer["status"]["conditions"]}["Ready"] == "True"

    secret = issued_secret(cluster, "web-tls")
    assert secret["type"] == "kubernetes.io/tls"
    assert {"tls.crt", "tls.key", "ca.crt"} <= set(secret["data"])
    assert secret["metadata"]["annotations"]["cert-manager.io/certificate-name"] == "web"
    text = certificate_text(secret)
    assert "DNS:web.e2e-certs.svc" in text
    assert "id-ecPublicKey" in text
    # Self-signed: the certificate is its own issuer.
    names = subject_and_issuer(secret)
    assert names == {"subject": "CN=web.e2e-certs.svc", "issuer": "CN=web.e2e-certs.svc"}, names


def test_a_controller_that_dies_is_started_again(stack: Stack) -> None:
    cluster, cert_manager = stack.cluster, stack.cert_manager
    install(stack)
    before = cert_manager.starts
    process = cert_manager._process
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    cluster.wait_for(lambda: cert_manager.starts > before and cert_manager.running(), 30, "cert-manager started again")

    apply(cluster, certificate("after-restart", "kubeflow-self-signing-issuer", "after.e2e-certs.svc"))
    cert_manager.wait_certificate_ready(NAMESPACE, "after-restart")
    assert "DNS:after.e2e-certs.svc" in certificate_text(issued_secret(cluster, "after-restart-tls"))
