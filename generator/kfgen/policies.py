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
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .buildcache import BuildCache, digest_text
from .errors import InputError, Problem, ToolMissing
from .spec import Environment
from .tools import find_tool
from .yamlio import load_file

CONFTEST_VERSION = "v0.69.0"
_CRD = "CustomResourceDefinition"
EXCEPTIONS_FILE = "exceptions.yaml"
_MESSAGE = re.compile(r"^\[(?P<rule>[a-z0-9-]+)\] (?P<object>[^:]+): (?P<message>.*)$")
_EXCEPTED = re.compile(r"^\[excepted:(?P<rule>[a-z0-9-]+)\] (?P<object>.+)$")
# Characters JSON leaves raw that YAML reads otherwise: DEL, the C1 controls and U+FFFE/U+FFFF are
# refused, and NEL is a line break (folded into a space inside a string).
_NOT_YAML_PRINTABLE = re.compile("[\x7f-\x9f\ufffe\uffff]")


@dataclass(frozen=True, order=True)
class PolicyException:
    rule: str
    kind: str
    namespace: str
    name: str
    reason: str

    @property
    def object(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


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
    """What the policies say of one component's objects."""

    violations: tuple[tuple[str, str, str], ...] = ()  # (rule, object, message), sorted
    excepted: frozenset[tuple[str, str]] = frozenset()  # (rule, object) pairs that an exception covered


@dataclass(frozen=True)
class PolicyReport:
    environment: str
    violations: list[Violation]
    excepted: set[tuple[str, str]]  # (rule, object) pairs that an exception covered


def find_conftest(project_root: Path) -> str:
    return find_tool("conftest", project_root, CONFTEST_VERSION)


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
    # fifths of its time parsing them for nothing. Characters stay raw: YAML refuses the \u-escaped
    # surrogate pairs that ASCII-only JSON spells characters beyond the BMP with.
    documents = {component: [json.dumps(o, ensure_ascii=False) for o in everything if o.get("kind") != _CRD]
                 for component, everything in objects.items()}
    return _report(environment, _run_conftest(conftest, policy_dir, settings, exceptions, documents))


def _run_conftest(conftest: str, policy_dir: Path, settings: dict[str, Any], exceptions: Iterable[PolicyException],
                  documents: dict[str, list[str]]) -> dict[str, ComponentVerdict]:
    """One conftest run over the JSON documents of several components: the verdict on each component."""
    if not policy_dir.is_dir():
        raise InputError([Problem(str(policy_dir), 0, 0, "", "no policies folder: the project's Rego policies belong in policies/")])
    if not any(documents.values()):
        return {component: ComponentVerdict() for component in documents}
    with tempfile.TemporaryDirectory(prefix="kfgen-policy-") as scratch:
        root = Path(scratch)
        data = {"settings": settings, "exceptions": [e.__dict__ for e in exceptions]}
        (root / "data.json").write_text(json.dumps(data), encoding="utf-8")
        # Each object as a JSON document of one YAML file per component: JSON is YAML, and Python writes
        # it many times faster. (A JSON file per object reads faster still, but creating the files costs more.)
        files = []
        for component, texts in documents.items():
            if texts:
                path = root / "objects" / f"{component}.yaml"
                path.parent.mkdir(exist_ok=True)
                path.write_text(_as_yaml("".join(f"---\n{text}\n" for text in texts)), encoding="utf-8")
                files.append(str(path))
        result = subprocess.run(
            [conftest, "test", "--no-color", "--output", "json", "--namespace", "main", "--policy", str(policy_dir),
             "--data", str(root / "data.json"), *files],
            capture_output=True, text=True,
        )
        if result.returncode not in (0, 1):
            raise ToolMissing(f"conftest failed: {result.stderr.strip() or result.stdout.strip()}")
        try:
            outcomes = json.loads(result.stdout)
        except ValueError:
            raise ToolMissing(f"conftest gave no JSON: {result.stdout[:500]} {result.stderr[:500]}") from None
    violations: dict[str, set[tuple[str, str, str]]] = {component: set() for component in documents}
    excepted: dict[str, set[tuple[str, str]]] = {component: set() for component in documents}
    for outcome in outcomes:
        component = Path(outcome["filename"]).stem
        for failure in outcome.get("failures") or []:
            match = _MESSAGE.match(failure["msg"])
            violations[component].add((match["rule"], match["object"], match["message"]) if match else ("policy", "", failure["msg"]))
        for warning in outcome.get("warnings") or []:
            match = _EXCEPTED.match(warning["msg"])
            if match:
                excepted[component].add((match["rule"], match["object"]))
    return {component: ComponentVerdict(tuple(sorted(violations[component])), frozenset(excepted[component])) for component in documents}


def _as_yaml(json_documents: str) -> str:
    """JSON documents as YAML that reads back the same: JSON is YAML, bar a few characters it leaves raw."""
    return _NOT_YAML_PRINTABLE.sub(lambda match: f"\\u{ord(match.group()):04x}", json_documents)


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


def checked_environment(conftest: str, policy_dir: Path, environment: Environment, objects: dict[str, list[dict[str, Any]]],
                        exceptions: list[PolicyException], verdicts: BuildCache | None, build_keys: list[str]) -> PolicyReport:
    """run_policies for `kfgen check`, answered from the cache when neither the objects (by their build keys),
    the policies, the exceptions nor the environment's settings changed."""
    settings = environment_settings(environment)
    key = None
    if verdicts is not None and all(build_keys):
        policy_files = sorted(p for p in policy_dir.rglob("*") if p.is_file())
        key = digest_text("policy", CONFTEST_VERSION, json.dumps(settings, sort_keys=True), json.dumps([e.__dict__ for e in exceptions]),
                          json.dumps(build_keys), *(f"{p.relative_to(policy_dir)}:{p.read_text(encoding='utf-8')}" for p in policy_files))
        stored = verdicts.get(key)
        if stored is not None:
            data = json.loads(stored)
            return PolicyReport(data["environment"], [Violation(**v) for v in data["violations"]],
                                {tuple(pair) for pair in data["excepted"]})
    report = run_policies(conftest, policy_dir, environment.name, settings, objects, exceptions)
    if key is not None:
        verdicts.put(key, json.dumps({"environment": report.environment, "violations": [v.__dict__ for v in report.violations],
                                      "excepted": sorted(report.excepted)}))
    return report
