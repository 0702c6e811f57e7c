"""Policies: the Rego rules in policies/, run by the real conftest over every environment's objects.

The environment's settings (whether requests and limits are required, whether LoadBalancer
Services are allowed) and the exceptions in policies/exceptions.yaml are passed to the policies as
data. An excepted violation comes back as a warning, so that an exception which matches nothing in
any checked environment is reported as an error of its own.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .buildcache import BuildCache, digest_files, digest_text
from .errors import InputError, PolicyError, Problem
from .kustomize import find_kustomize, kustomize_build
from .objectkey import ObjectKey
from .refs import RemoteDir
from .sources import SourceCache, vendor
from .spec import Environment
from .tools import find_tool, go_tool_environment, tool_identity
from .yamlio import load_all_plain, load_file

if TYPE_CHECKING:
    from .build import ComponentBuild

CONFTEST_VERSION = "v0.69.0"
_CRD = "CustomResourceDefinition"
# yaml2json writes compact JSON with sorted keys, so a CRD's line starts with its apiVersion and kind.
_CRD_LINE = re.compile(r'\{"apiVersion":"[^"\\]*","kind":"CustomResourceDefinition"[,}]')
EXCEPTIONS_FILE = "exceptions.yaml"
_MESSAGE = re.compile(r"^\[(?P<rule>[a-z0-9-]+)\] (?P<object>[^:]+): (?P<message>.*)$")
_EXCEPTED = re.compile(r"^\[excepted:(?P<rule>[a-z0-9-]+)\] (?P<object>.+)$")
# The policies judge one object at a time (package main's deny and warn). Giving conftest every object as
# a document of its own costs it a YAML parse and a query per object, four fifths of its time; one JSON
# input walked by this package, which asks package main once per object, gives the same answers.
_EACH_OBJECT_PACKAGE = "kfgen_each_object"
_EACH_OBJECT = f"""package {_EACH_OBJECT_PACKAGE}

import rego.v1

deny contains sprintf("%s %s", [component, message]) if {{
\tsome component, objects in input.components
\tsome object in objects
\tsome message in data.main.deny with input as object
}}

warn contains sprintf("%s %s", [component, message]) if {{
\tsome component, objects in input.components
\tsome object in objects
\tsome message in data.main.warn with input as object
}}
"""


@dataclass(frozen=True, order=True)
class PolicyException:
    rule: str
    kind: str
    namespace: str
    name: str
    reason: str

    @property
    def object(self) -> str:
        """The excepted object as the policies name it (lib.rego's describe): by kind, namespace and name, so an
        exception holds for the kind in any API group."""
        return ObjectKey("", self.kind, self.namespace, self.name).kind_and_name


@dataclass(frozen=True, order=True)
class Violation:
    environment: str
    component: str
    rule: str
    object: str
    message: str

    def format(self) -> str:
        return f"{self.environment}/{self.component}: [{self.rule}] {self.object}: {self.message}"


@dataclass(frozen=True)
class ComponentVerdict:
    """What the policies say of one component's objects. It depends on nothing else (each object is
    conftest's input on its own), so `kfgen check` caches it by the component's build key."""

    violations: tuple[tuple[str, str, str], ...] = ()  # (rule, object, message), sorted
    excepted: frozenset[tuple[str, str]] = frozenset()  # (rule, object) pairs that an exception covered

    def to_json(self) -> str:
        return json.dumps({"violations": self.violations, "excepted": sorted(self.excepted)})

    @classmethod
    def from_json(cls, text: str) -> ComponentVerdict:
        data = json.loads(text)
        return cls(tuple(tuple(v) for v in data["violations"]), frozenset(tuple(pair) for pair in data["excepted"]))


@dataclass(frozen=True)
class PolicySuite:
    """The project's policies as conftest runs them, read once per run."""

    conftest: str
    directory: Path
    exceptions: tuple[PolicyException, ...]
    digest: str  # of conftest (version and binary), the package that walks the objects, every file in the policies folder


@dataclass(frozen=True)
class PolicyReport:
    environment: str
    violations: list[Violation]
    excepted: set[tuple[str, str]]  # (rule, object) pairs that an exception covered


def find_conftest(project_root: Path) -> str:
    conftest = find_tool("conftest", project_root, CONFTEST_VERSION)
    assert conftest is not None  # a required tool is found, or find_tool raises ToolMissing
    return conftest


def load_exceptions(policy_dir: Path) -> list[PolicyException]:
    path = policy_dir / EXCEPTIONS_FILE
    if not path.is_file():
        return []
    document = load_file(path, f"policies/{EXCEPTIONS_FILE}")
    entries = (document.data or {}).get("exceptions") if isinstance(document.data, dict) else None
    problems: list[Problem] = []
    exceptions = []
    fields = ("rule", "kind", "name", "reason")
    for index, entry in enumerate(entries or []):
        if not isinstance(entry, dict) or any(not isinstance(entry.get(f), str) or not entry.get(f) for f in fields):
            problems.append(document.problem(("exceptions", index), f"an exception needs {', '.join(fields)} (and namespace for namespaced objects)"))
            continue
        unknown = set(entry) - {*fields, "namespace"}
        if unknown:
            problems.append(document.problem(("exceptions", index), f"unknown fields {sorted(unknown)}"))
            continue
        exceptions.append(PolicyException(entry["rule"], entry["kind"], entry.get("namespace", ""), entry["name"], entry["reason"]))
    if problems:
        raise InputError(problems)
    return exceptions


def environment_settings(environment: Environment) -> dict[str, Any]:
    """What the policies may assume of an environment."""
    istio = environment.components.get("istio")
    service_type = istio.settings.get("ingressServiceType", "auto") if istio else "auto"
    allow_lb = service_type == "LoadBalancer" or (service_type == "auto" and environment.cluster.provider != "kind")
    return {"requireResources": environment.stage == "production", "allowLoadBalancer": allow_lb}


def run_policies(conftest: str, policy_dir: Path, environment: str, settings: dict[str, Any],
                 objects: dict[str, list[dict[str, Any]]], exceptions: Iterable[PolicyException]) -> PolicyReport:
    """Run conftest over objects (by component) with settings and exceptions as data."""
    # CRDs hold no workload, credential or role, and are most of the bytes: conftest would spend four
    # fifths of its time parsing them for nothing.
    documents = {component: [json.dumps(o) for o in everything if o.get("kind") != _CRD]
                 for component, everything in objects.items()}
    return _report(environment, _run_conftest(conftest, policy_dir, settings, exceptions, documents))


def _run_conftest(conftest: str, policy_dir: Path, settings: dict[str, Any], exceptions: Iterable[PolicyException],
                  documents: dict[str, list[str]]) -> dict[str, ComponentVerdict]:
    """One conftest run over the JSON documents of several components: the verdict on each component."""
    _require_policy_folder(policy_dir)
    if not any(documents.values()):
        return {component: ComponentVerdict() for component in documents}
    with tempfile.TemporaryDirectory(prefix="kfgen-policy-") as scratch:
        root = Path(scratch)
        data = {"settings": settings, "exceptions": [e.__dict__ for e in exceptions]}
        (root / "data.json").write_text(json.dumps(data), encoding="utf-8")
        (root / "each-object").mkdir()
        (root / "each-object" / "each_object.rego").write_text(_EACH_OBJECT, encoding="utf-8")
        members = (f"{json.dumps(component)}:[{','.join(texts)}]" for component, texts in documents.items() if texts)
        (root / "objects.json").write_text(f'{{"components":{{{",".join(members)}}}}}', encoding="utf-8")
        result = subprocess.run(
            [conftest, "test", "--no-color", "--output", "json", "--namespace", _EACH_OBJECT_PACKAGE,
             "--policy", str(policy_dir), "--policy", str(root / "each-object"), "--data", str(root / "data.json"),
             str(root / "objects.json")],
            capture_output=True, text=True, env=go_tool_environment(),
        )
        if result.returncode not in (0, 1):
            raise PolicyError(f"conftest failed on the policies in {policy_dir}: {result.stderr.strip() or result.stdout.strip()}")
        try:
            outcomes = json.loads(result.stdout)
        except ValueError:
            raise PolicyError(f"conftest gave no JSON: {result.stdout[:500]} {result.stderr[:500]}") from None
    violations: dict[str, set[tuple[str, str, str]]] = {component: set() for component in documents}
    excepted: dict[str, set[tuple[str, str]]] = {component: set() for component in documents}
    for outcome in outcomes:
        for failure in outcome.get("failures") or []:
            component, message = failure["msg"].split(" ", 1)
            match = _MESSAGE.match(message)
            violations[component].add((match["rule"], match["object"], match["message"]) if match else ("policy", "", message))
        for warning in outcome.get("warnings") or []:
            component, message = warning["msg"].split(" ", 1)
            match = _EXCEPTED.match(message)
            if match:
                excepted[component].add((match["rule"], match["object"]))
    return {component: ComponentVerdict(tuple(sorted(violations[component])), frozenset(excepted[component])) for component in documents}


def _require_policy_folder(policy_dir: Path) -> None:
    if not policy_dir.is_dir():
        raise InputError([Problem(str(policy_dir), 0, 0, "", "no policies folder: the project's Rego policies belong in policies/")])


def _report(environment: str, verdicts: dict[str, ComponentVerdict]) -> PolicyReport:
    violations = sorted(Violation(environment, component, *violation)
                        for component, verdict in verdicts.items() for violation in verdict.violations)
    return PolicyReport(environment, violations, set().union(*(v.excepted for v in verdicts.values())))


def unused_exceptions(exceptions: Iterable[PolicyException], reports: Iterable[PolicyReport]) -> list[PolicyException]:
    used = set().union(*(r.excepted for r in reports))
    return sorted(e for e in exceptions if (e.rule, e.object) not in used)


def rule_counts(report: PolicyReport) -> dict[str, int]:
    counts: dict[str, int] = {}
    for violation in report.violations:
        counts[violation.rule] = counts.get(violation.rule, 0) + 1
    return counts


def rules(policy_dir: Path) -> list[str]:
    """Rule names, as the policies spell them."""
    found = set()
    for path in policy_dir.glob("*.rego"):
        if not path.name.endswith("_test.rego"):
            found.update(re.findall(r'"rule": "([a-z0-9-]+)"', path.read_text(encoding="utf-8")))
    return sorted(found)


def load_suite(project_root: Path) -> PolicySuite:
    """The policies folder read once: its exceptions, and the digest every cached verdict is keyed on."""
    policy_dir = project_root / "policies"
    _require_policy_folder(policy_dir)
    exceptions = tuple(load_exceptions(policy_dir))
    conftest = find_conftest(project_root)
    # The binary itself, not only its version string: a conftest built from other sources reports "dev" too.
    digest = digest_text(CONFTEST_VERSION, tool_identity(conftest), _EACH_OBJECT, digest_files(policy_dir))
    return PolicySuite(conftest, policy_dir, exceptions, digest)


def checked_environment(suite: PolicySuite, environment: Environment, components: Sequence[ComponentBuild],
                        verdicts: BuildCache | None) -> PolicyReport:
    """run_policies for `kfgen check`: each component's verdict comes from the cache when neither its objects
    (by their build key), the policies, the exceptions nor the environment's settings changed, and one
    conftest run answers for the others. Only their objects are read."""
    settings = environment_settings(environment)
    scope = digest_text("policy-verdict", suite.digest, json.dumps(settings, sort_keys=True))
    keys = {c.name: digest_text(scope, c.key) for c in components if c.key} if verdicts is not None else {}
    found: dict[str, ComponentVerdict] = {}
    if verdicts is not None:
        for name, key in keys.items():
            stored = verdicts.get(key)
            if stored is not None:
                found[name] = ComponentVerdict.from_json(stored)
    missing = [c for c in components if c.name not in found]
    fresh = _run_conftest(suite.conftest, suite.directory, settings, suite.exceptions, {c.name: policy_documents(c) for c in missing})
    if verdicts is not None:
        for name, verdict in fresh.items():
            if name in keys:
                verdicts.put(keys[name], verdict.to_json())
    return _report(environment.name, {**found, **fresh})


def policy_documents(component: ComponentBuild) -> list[str]:
    """A built component's objects as JSON documents for conftest, CRDs left out (see run_policies).
    Taken from the JSON lines the build converted when there are some, which saves parsing them."""
    if component.json_lines is None:
        return [json.dumps(o) for o in component.objects if o.get("kind") != _CRD]
    return [line for line in component.json_lines.splitlines() if line and not _is_crd(line)]


def _is_crd(json_line: str) -> bool:
    """Whether a line of yaml2json's is a CustomResourceDefinition, parsed only in the rare case its start does not tell."""
    if _CRD_LINE.match(json_line):
        return True
    if f'"{_CRD}"' not in json_line:
        return False
    document = json.loads(json_line)
    return isinstance(document, dict) and document.get("kind") == _CRD


@dataclass(frozen=True)
class UpstreamComparison:
    """Violations rule by rule: upstream's example/ build, an environment of ours, and ours after the exceptions."""

    release: str
    environment: str
    rules: list[str]
    upstream: dict[str, int]
    ours: dict[str, int]
    ours_excepted: dict[str, int]
    upstream_objects: int
    our_objects: int


def compare_with_upstream(project_root: Path, conftest: str, environment: Environment, release: str,
                          ours: dict[str, list[dict[str, Any]]], report: PolicyReport, cache: SourceCache) -> UpstreamComparison:
    """The policies on upstream's example/ of release, built with the project's kustomize, against environment's
    objects (ours, by component, whose report is with the exceptions applied)."""
    policy_dir = project_root / "policies"
    example = RemoteDir("github.com", "kubeflow", "manifests", release, "example")
    with tempfile.TemporaryDirectory(prefix="kfgen-upstream-") as scratch:
        vendor([example], cache, Path(scratch) / "vendor")
        upstream = load_all_plain(kustomize_build(find_kustomize(project_root), Path(scratch) / "vendor" / example.relpath))
    settings = environment_settings(environment)
    upstream_report = run_policies(conftest, policy_dir, "upstream", settings, {"example": upstream}, [])
    raw_report = run_policies(conftest, policy_dir, environment.name, settings, ours, [])
    return UpstreamComparison(release, environment.name, rules(policy_dir), rule_counts(upstream_report), rule_counts(raw_report),
                              rule_counts(report), len(upstream), sum(map(len, ours.values())))
