"""Moving the spec to another Kubeflow release.

The spec is edited as text with a round-trip YAML parser, so comments and formatting stay as they
were; only the release (and, when the new release does not support it, the Kubernetes version)
changes. The edited spec is validated before it is returned, so a broken edit is never written.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML

from .catalog import Catalog
from .errors import InputError
from .resolve import resolve
from .yamlio import parse


@dataclass(frozen=True)
class ReleaseEdit:
    from_release: str
    to_release: str
    text: str  # the spec moved to to_release


def edit_release(text: str, version: str, kubernetes: tuple[str, ...]) -> str:
    """The spec text with kubeflow.version set (and kubernetes.version if the release needs it)."""
    yaml = YAML()  # round trip: comments, order and quoting survive
    yaml.preserve_quotes = True
    yaml.width = 4096
    document = yaml.load(text)
    quote = type(document["kubeflow"]["version"])
    document["kubeflow"]["version"] = quote(version) if quote is not str else version
    if document["kubernetes"]["version"] not in kubernetes:
        document["kubernetes"]["version"] = type(document["kubernetes"]["version"])(kubernetes[-1])
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def release_edit(spec: Path, catalog: Catalog, to_release: str) -> ReleaseEdit | None:
    """The spec at path spec moved to Kubeflow to_release and validated; None when it is at that release already."""
    if to_release not in catalog.kubernetes_versions:
        raise InputError(f"unknown Kubeflow release {to_release!r}; the catalog supports: {', '.join(catalog.releases)}")
    original = spec.read_text(encoding="utf-8")
    current = resolve(parse(original, "platform.yaml"), catalog)
    if current.kubeflow_version == to_release:
        return None
    edited = edit_release(original, to_release, catalog.kubernetes_versions[to_release])
    resolve(parse(edited, f"platform.yaml (at Kubeflow {to_release})"), catalog)  # refuse an edit that breaks the spec
    return ReleaseEdit(current.kubeflow_version, to_release, edited)
