"""Policies: the Rego unit tests, and the real conftest over real and planted objects."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from helpers import PROJECT
from kfgen.buildcache import BuildCache
from kfgen.catalog import load_catalog
from kfgen.errors import InputError, PolicyError
from kfgen.policies import (
    PolicyException,
    PolicyReport,
    PolicySuite,
    checked_environment,
    environment_settings,
    find_conftest,
    load_exceptions,
    load_suite,
    run_policies,
    unused_exceptions,
)
from kfgen.spec import load_platform

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


def _pod(name: str, container: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "team"},
            "spec": {"containers": [{"name": container, "image": "registry.example/app:1.0"}]}}


def test_every_object_is_judged_on_its_own_whatever_characters_it_holds():
    """Names beyond the BMP, C1 controls and escaped lone surrogates reach the policies intact, and each
    object (not the component's list of them) is the policies' input."""
    names = ["plain", "caf\u00e9-\U0001f680", "nel\x85del\x7f", "lone\ud800"]
    objects = {"apps": [_pod(f"pod-{index}", name) for index, name in enumerate(names)], "empty": []}
    report = run_policies(CONFTEST, POLICIES, "prod", STRICT, objects, [])
    run_as_root = sorted((v.component, v.object) for v in report.violations if v.rule == "run-as-non-root")
    assert run_as_root == [("apps", f"Pod team/pod-{index}") for index in range(len(names))]
    messages = {v.message for v in report.violations if v.rule == "run-as-non-root"}
    assert 'container "caf\u00e9-\U0001f680" may run as root' in messages


def test_a_broken_policy_is_a_policy_error_not_a_missing_tool(tmp_path):
    shutil.copytree(POLICIES, tmp_path / "policies")
    (tmp_path / "policies" / "broken.rego").write_text("package rules\n\nviolation contains x if {\n", encoding="utf-8")
    with pytest.raises(PolicyError, match=r"broken\.rego"):
        run_policies(CONFTEST, tmp_path / "policies", "prod", STRICT, {"apps": [_pod("pod", "app")]}, [])


def test_exception_without_a_reason_is_bad_input(tmp_path):
    (tmp_path / "exceptions.yaml").write_text("exceptions:\n- {rule: no-host-path, kind: DaemonSet, name: x}\n")
    with pytest.raises(InputError, match="needs rule, kind, name, reason"):
        load_exceptions(tmp_path)


# --- verdicts cached per component (`kfgen check`) ---


_LOGGING_CONFTEST = """#!{python}
import json, os, sys
with open(next(a for a in sys.argv if a.endswith(".json") and not a.endswith("data.json")), encoding="utf-8") as objects:
    components = sorted(json.load(objects)["components"])
with open({log!r}, "a", encoding="utf-8") as log:
    log.write(json.dumps(components) + "\\n")
os.execv({conftest!r}, [{conftest!r}, *sys.argv[1:]])
"""


class CountedPolicies:
    """A copy of the policies, minus the no-host-path exception (so that verdicts hold violations too),
    run by the real conftest through a script that logs the components given to each run."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch):
        self.root = root
        shutil.copytree(POLICIES, root / "policies")
        exceptions = root / "policies" / "exceptions.yaml"
        document = yaml.safe_load(exceptions.read_text(encoding="utf-8"))
        document["exceptions"] = [e for e in document["exceptions"] if e["rule"] != "no-host-path"]
        exceptions.write_text(yaml.safe_dump(document), encoding="utf-8")
        self.log = root / "conftest.log"
        wrapper = root / "conftest"
        wrapper.write_text(_LOGGING_CONFTEST.format(python=sys.executable, log=str(self.log), conftest=CONFTEST), encoding="utf-8")
        wrapper.chmod(0o755)
        monkeypatch.setenv("KFGEN_CONFTEST", str(wrapper))
        self.cache = BuildCache(root / "cache")

    def suite(self) -> PolicySuite:
        return load_suite(self.root)

    def runs(self) -> list[list[str]]:
        """The components each conftest run so far was given."""
        lines = self.log.read_text(encoding="utf-8").splitlines() if self.log.exists() else []
        return [json.loads(line) for line in lines]


@pytest.fixture
def counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CountedPolicies:
    return CountedPolicies(tmp_path, monkeypatch)


def _environment(env: str):
    return load_platform(PROJECT / "platform.yaml", load_catalog(PROJECT / "components")).environment(env)


def _uncached(suite: PolicySuite, env: str, components) -> PolicyReport:
    return run_policies(CONFTEST, suite.directory, env, environment_settings(_environment(env)),
                        {c.name: c.objects for c in components}, suite.exceptions)


def _with_objects(component, objects, key: str):
    """The component as if built from changed inputs."""
    return dataclasses.replace(component, key=key, json_lines="\n".join(json.dumps(o) for o in objects), _objects=None)


@pytest.mark.parametrize("env", ["local", "staging", "prod"])
def test_cached_verdicts_equal_an_uncached_run(built, counted, env):
    components = built("26.03", env).components
    suite = counted.suite()
    first = checked_environment(suite, _environment(env), components, counted.cache)
    assert len(counted.runs()) == 1 and counted.cache.hits == 0
    again = checked_environment(suite, _environment(env), components, counted.cache)
    assert len(counted.runs()) == 1 and counted.cache.hits == len(components)
    assert first == again == _uncached(suite, env, components)
    assert first.violations and first.excepted  # the comparison has something to compare


def test_a_changed_component_reruns_conftest_on_it_alone(built, counted):
    components = built("26.03", "prod").components
    suite = counted.suite()
    checked_environment(suite, _environment("prod"), components, counted.cache)
    dex = next(c for c in components if c.name == "dex")
    objects = copy.deepcopy(dex.objects)
    next(o for o in objects if o["kind"] == "Deployment")["spec"]["template"]["spec"]["hostNetwork"] = True
    changed = tuple(_with_objects(c, objects, "changed dex") if c is dex else c for c in components)
    report = checked_environment(suite, _environment("prod"), changed, counted.cache)
    assert counted.runs()[1:] == [["dex"]]
    assert ("dex", "no-host-namespaces", "Deployment auth/dex") in {(v.component, v.rule, v.object) for v in report.violations}
    assert report == _uncached(suite, "prod", changed)


def test_components_built_alike_share_verdicts_across_environments(built, counted):
    components = built("26.03", "local").components
    suite = counted.suite()
    local = checked_environment(suite, _environment("local"), components, counted.cache)
    twin = dataclasses.replace(_environment("local"), name="local-twin")
    report = checked_environment(suite, twin, components, counted.cache)
    assert len(counted.runs()) == 1
    assert [dataclasses.replace(v, environment="local") for v in report.violations] == local.violations


def test_a_corrupt_verdict_is_rebuilt(built, counted):
    components = built("26.03", "local").components
    suite = counted.suite()
    expected = checked_environment(suite, _environment("local"), components, counted.cache)
    # The verdict on istio's CNI DaemonSet (its hostPath volumes are not excepted here).
    entry = next(p for p in (counted.root / "cache").rglob("*.yaml") if "no-host-path" in p.read_text(encoding="utf-8"))
    entry.write_text(entry.read_text(encoding="utf-8").replace("no-host-path", "no-host-pth"), encoding="utf-8")
    assert checked_environment(suite, _environment("local"), components, counted.cache) == expected
    runs = counted.runs()
    assert counted.cache.corrupt == 1 and len(runs) == 2 and len(runs[1]) == 1
    assert checked_environment(suite, _environment("local"), components, counted.cache) == expected
    assert len(counted.runs()) == 2  # the rebuilt entry holds


def test_an_edited_policy_file_invalidates_every_verdict(built, counted):
    components = built("26.03", "local").components
    expected = checked_environment(counted.suite(), _environment("local"), components, counted.cache)
    with open(counted.root / "policies" / "lib.rego", "a", encoding="utf-8") as rego:
        rego.write("\n# edited\n")
    assert checked_environment(counted.suite(), _environment("local"), components, counted.cache) == expected
    runs = counted.runs()
    assert counted.cache.hits == 0 and len(runs) == 2 and runs[1] == runs[0]


def test_check_reports_unused_exceptions_from_cached_verdicts_too(make_project):
    project = make_project()
    exceptions = project.root / "policies" / "exceptions.yaml"
    exceptions.write_text(exceptions.read_text(encoding="utf-8") + textwrap.dedent("""\
        - rule: no-host-path
          kind: DaemonSet
          namespace: kube-system
          name: nothing-here
          reason: matches nothing
        """), encoding="utf-8")
    project.vendor()
    assert project.kfgen("render").returncode == 0
    for _ in range(2):  # the second run answers from the cache
        result = project.kfgen("--output", "json", "check")
        assert result.returncode == 1, result.stderr
        report = json.loads(result.stdout)
        assert report["policy"] == []
        assert [(e["rule"], e["name"]) for e in report["unusedExceptions"]] == [("no-host-path", "nothing-here")]
