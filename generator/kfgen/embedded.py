"""JSON documents embedded in a ConfigMap value, edited field by field.

Some upstream settings are one JSON text inside a ConfigMap key (KServe's inferenceservice-config
`ingress`, for one). A patch can only replace the whole text, so a catalog template `test`s upstream's
exact text and replaces it with this edit of it: the fields named are set, every other field and
upstream's layout stay, and a field upstream does not have is an error rather than a silent addition.
"""

from __future__ import annotations

import json
from typing import Any


def with_json_fields(text: str, fields: dict[str, Any]) -> str:
    """text (a JSON object, laid out as json.dumps with two-space indent) with fields set."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"not a JSON document: {err}") from None
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    # Only a layout this module reproduces: otherwise the replacement would reformat upstream's text.
    if json.dumps(document, indent=2) != text:
        raise ValueError("not laid out as two-space indented JSON; the edit would reformat it")
    unknown = sorted(set(fields) - set(document))
    if unknown:
        raise ValueError(f"no field {', '.join(map(repr, unknown))} to set (fields: {', '.join(document)})")
    document.update(fields)
    return json.dumps(document, indent=2)
