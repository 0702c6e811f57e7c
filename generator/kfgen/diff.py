"""What a change does to the platform: objects added, removed and changed, per environment and component.

Input is two snapshots of built objects (environment -> component -> objects); output is a
DiffReport that prints as text, Markdown for a pull-request comment, or JSON.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .objectkey import ObjectKey

MARKDOWN_LIMIT = 65_000

Snapshot = dict[str, dict[str, list[dict[str, Any]]]]


@dataclass(frozen=True)
class FieldChange:
    path: str
    old: Any
    new: Any


@dataclass(frozen=True)
class ObjectChange:
    object: str
    fields: list[FieldChange]


@dataclass
class ComponentDiff:
    environment: str
    component: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[ObjectChange] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


@dataclass
class DiffReport:
    components: list[ComponentDiff]

    @property
    def changed(self) -> bool:
        return bool(self.components)

    def totals(self) -> tuple[int, int, int]:
        return (sum(len(c.added) for c in self.components), sum(len(c.removed) for c in self.components),
                sum(len(c.changed) for c in self.components))


_MISSING = object()


def field_changes(old: Any, new: Any, path: str = "") -> list[FieldChange]:
    """Leaf-level differences between two objects; lists compare by position, or by `name` when every item has one."""
    if isinstance(old, dict) and isinstance(new, dict):
        changes = []
        for key in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{key}" if path else str(key)
            changes += field_changes(old.get(key, _MISSING), new.get(key, _MISSING), sub)
        return changes
    if isinstance(old, list) and isinstance(new, list):
        if all(isinstance(i, dict) and "name" in i for i in old + new) and old + new:
            old_by, new_by = {i["name"]: i for i in old}, {i["name"]: i for i in new}
            changes = []
            for name in list(dict.fromkeys([*old_by, *new_by])):
                changes += field_changes(old_by.get(name, _MISSING), new_by.get(name, _MISSING), f"{path}[name={name}]")
            return changes
        if len(old) == len(new):
            changes = []
            for index, (a, b) in enumerate(zip(old, new, strict=True)):
                changes += field_changes(a, b, f"{path}[{index}]")
            return changes
    if old == new:
        return []
    return [FieldChange(path, None if old is _MISSING else old, None if new is _MISSING else new)]


def compare(before: Snapshot, after: Snapshot) -> DiffReport:
    diffs = []
    for env in sorted(set(before) | set(after)):
        old_env, new_env = before.get(env, {}), after.get(env, {})
        for component in sorted(set(old_env) | set(new_env)):
            # Keyed by group, not apiVersion: a new version of the same object is a changed field, not a removal and an addition.
            old = {ObjectKey.from_manifest(o): o for o in old_env.get(component, [])}
            new = {ObjectKey.from_manifest(o): o for o in new_env.get(component, [])}
            diff = ComponentDiff(env, component)
            diff.added = [str(key) for key in sorted(set(new) - set(old))]
            diff.removed = [str(key) for key in sorted(set(old) - set(new))]
            for key in sorted(set(old) & set(new)):
                changes = field_changes(old[key], new[key])
                if changes:
                    diff.changed.append(ObjectChange(str(key), changes))
            if not diff.empty:
                diffs.append(diff)
    return DiffReport(diffs)


def _value(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 120 else text[:117] + "..."


def _component_lines(diff: ComponentDiff) -> list[str]:
    lines = [f"{diff.environment}/{diff.component}: +{len(diff.added)} -{len(diff.removed)} ~{len(diff.changed)}"]
    lines += [f"  + {name}" for name in diff.added]
    lines += [f"  - {name}" for name in diff.removed]
    for change in diff.changed:
        lines.append(f"  ~ {change.object}")
        lines += [f"      {f.path}: {_value(f.old)} -> {_value(f.new)}" for f in change.fields]
    return lines


def format_text(report: DiffReport) -> str:
    if not report.changed:
        return "diff: no object changes\n"
    lines = []
    for diff in report.components:
        lines += _component_lines(diff)
    added, removed, changed = report.totals()
    lines.append(f"diff: {added} added, {removed} removed, {changed} changed in {len(report.components)} components")
    return "\n".join(lines) + "\n"


def format_markdown(report: DiffReport, limit: int = MARKDOWN_LIMIT) -> str:
    added, removed, changed = report.totals()
    if not report.changed:
        return "### Platform diff\n\nNo object changes.\n"
    head = [
        "### Platform diff", "",
        f"**{added}** added, **{removed}** removed, **{changed}** changed in {len(report.components)} components.", "",
        "| environment | component | added | removed | changed |", "|---|---|---:|---:|---:|",
    ]
    head += [f"| {d.environment} | {d.component} | {len(d.added)} | {len(d.removed)} | {len(d.changed)} |" for d in report.components]
    head.append("")
    body: list[str] = []
    size = sum(len(line) + 1 for line in head)
    omitted = 0
    for diff in report.components:
        section = [f"<details><summary>{diff.environment}/{diff.component}</summary>", "", "```diff",
                   *_component_lines(diff)[1:], "```", "</details>", ""]
        cost = sum(len(line) + 1 for line in section)
        if size + cost > limit - 200:
            omitted += 1
            continue
        body += section
        size += cost
    if omitted:
        body.append(f"_{omitted} component sections were cut to fit a comment; run `kfgen diff` for all of them._")
    return "\n".join(head + body) + "\n"


def format_json(report: DiffReport) -> str:
    added, removed, changed = report.totals()
    return json.dumps({"changed": report.changed, "added": added, "removed": removed, "modified": changed,
                       "components": [asdict(c) for c in report.components]}, indent=2) + "\n"
