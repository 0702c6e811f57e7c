"""Policies: the Rego unit tests, and the real conftest over real and planted objects."""

from __future__ import annotations

import copy
import os
import subprocess

import pytest
import yaml

from conftest import PROJECT
from kfgen.errors import InputError
from kfgen.policies import PolicyException, find_conftest, load_exceptions, run_policies, unused_exceptions

POLICIES = PROJECT / "policies"
CONFTEST = os.environ.get("KFGEN_CONFTEST", str(PROJECT / ".tools" / "bin" / "conftest"))
STRICT = {"requireResources": True, "allowLoadBalancer": False}


def test_rego_unit_tests_pass():
    result = subprocess.run([CONFTEST, "verify", "--no-color", "--policy", str(POLICIES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failures" in result.stdout


def test_policies_are_formatted():
    result = subprocess.run([CONFTEST, "fmt", "--check", str(POLICIES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _dex_objects(built):
    return {c.name: c.objects for c in built("26.03", "prod").components if c.name in ("dex", "kubeflow-istio-resources")}


def _with_upstream_dex_passwords(built):
    """Our dex objects plus the Secret upstream ships with its example user's password, which we remove."""
    objects = copy.deepcopy(_dex_objects(built))
    root = built.projects[("26.03", False)].root
    upstream = root / "vendor/github.com/kubeflow/manifests/26.03/common/dex/base/dex-passwords.yaml"
    secret = yaml.safe_load(upstream.read_text(encoding="utf-8"))
    secret["metadata"].setdefault("namespace", "auth")
    objects["dex"].append(secret)
    return objects


def test_policies_find_upstream_default_credentials(built):
    report = run_policies(find_conftest(PROJECT), POLICIES, "prod", STRICT, _with_upstream_dex_passwords(built), [])
    found = {(v.rule, v.object) for v in report.violations}
    assert ("no-default-credentials", "Secret auth/dex-passwords") in found
    assert ("no-plaintext-secrets", "Secret auth/dex-passwords") in found
    assert not any(v.rule == "gateway-tls" for v in report.violations)  # our gateway serves HTTPS


def test_planted_violations_are_reported_with_component_and_object(built):
    objects = copy.deepcopy(_dex_objects(built))
    deployment = next(o for o in objects["dex"] if o["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["hostNetwork"] = True
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/dexidp/dex:latest"
    report = run_policies(find_conftest(PROJECT), POLICIES, "prod", STRICT, objects, [])
    found = {(v.component, v.rule, v.object) for v in report.violations}
    assert ("dex", "no-host-namespaces", "Deployment auth/dex") in found
    assert ("dex", "pinned-images", "Deployment auth/dex") in found


def test_exceptions_silence_one_object_and_unused_ones_are_reported(built):
    used = PolicyException("no-default-credentials", "Secret", "auth", "dex-passwords", "replaced in this test")
    unused = PolicyException("no-host-path", "DaemonSet", "kube-system", "nothing-here", "matches nothing")
    report = run_policies(find_conftest(PROJECT), POLICIES, "prod", STRICT, _with_upstream_dex_passwords(built), [used, unused])
    assert ("no-default-credentials", "Secret auth/dex-passwords") not in {(v.rule, v.object) for v in report.violations}
    assert ("no-default-credentials", "Secret auth/dex-passwords") in report.excepted
    assert unused_exceptions([used, unused], [report]) == [unused]


def test_exception_without_a_reason_is_bad_input(tmp_path):
    (tmp_path / "exceptions.yaml").write_text("exceptions:\n- {rule: no-host-path, kind: DaemonSet, name: x}\n")
    with pytest.raises(InputError, match="needs rule, kind, name, reason"):
        load_exceptions(tmp_path)
