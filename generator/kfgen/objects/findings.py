"""What the object checks report: findings per object and field, and each environment's report."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class Finding:
    """One failed check, naming the object and the field."""

    environment: str
    component: str
    kind: str
    namespace: str
    name: str
    field: str  # e.g. spec.template.spec.containers[0].image; empty for the whole object
    message: str
    check: str  # schema, duplicate, namespace or crd-order

    def format(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        field = f" {self.field}:" if self.field else ""
        return f"{self.environment}/{self.component}: {self.kind} {where}:{field} {self.message}"


@dataclass(frozen=True)
class Violation:
    """A schema violation inside one object."""

    field: str
    message: str


@dataclass(frozen=True)
class EnvironmentReport:
    environment: str
    objects: int
    findings: tuple[Finding, ...]
    seconds: float
    # The schema verdict of each built object, by a digest of the object and the schemas it was held
    # to: given back to the next check of the environment, it spares validating what did not change.
    verdicts: Mapping[str, tuple[Violation, ...]] = field(default_factory=dict, repr=False, compare=False)
