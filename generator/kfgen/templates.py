"""Catalog patch templates: Jinja in a sandbox, where every printed value is JSON.

A template never pastes a string into YAML text: `{{ value }}` prints `json.dumps(value)`, which is
valid YAML for any value, so a hostile string cannot break out of its field. The output is parsed
again (safely) and re-serialized, so what reaches the overlay is always well-formed.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from .embedded import with_json_fields
from .errors import CatalogError
from .yamlio import parse, to_json


def _finalize(value: Any) -> str:
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()  # a missing value is an error, never "null"
    try:
        return to_json(value)
    except TypeError as err:
        raise jinja2.TemplateError(f"cannot print {type(value).__name__} as JSON: {err}") from None


def _json_fields(text: str, fields: dict[str, Any]) -> str:
    try:
        return with_json_fields(text, fields)
    except ValueError as err:
        raise jinja2.TemplateError(f"json_fields: {err}") from None


@cache
def _environment() -> SandboxedEnvironment:
    environment = SandboxedEnvironment(
        finalize=_finalize,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # `text | json_fields({...})`: upstream's embedded JSON with some fields set (embedded.py).
    environment.filters["json_fields"] = _json_fields
    return environment


@cache
def _compile(path: Path) -> jinja2.Template:
    return _environment().from_string(path.read_text(encoding="utf-8"))


@cache
def _compile_expression(expression: str) -> Callable[..., Any]:
    # Each expression is evaluated once per environment: compiling it is most of the cost.
    return _environment().compile_expression(expression)


def evaluate(expression: str, context: dict[str, Any], where: str) -> Any:
    """Evaluate a `when:` expression of the catalog."""
    try:
        return _compile_expression(expression)(**context)
    except jinja2.TemplateError as err:
        raise CatalogError(f"{where}: cannot evaluate {expression!r}: {err}") from None


def render_documents(path: Path, context: dict[str, Any], where: str) -> list[Any]:
    """Render a template and return the YAML documents it produced."""
    try:
        text = _compile(path).render(**context)
    except jinja2.TemplateError as err:
        raise CatalogError(f"{where}: template {path.name} failed: {err}") from None
    documents = []
    for index, chunk in enumerate(text.split("\n---\n")):
        document = _parsed(chunk, f"{where} (output of {path.name}, document {index + 1})")
        if document is not None:
            documents.append(_copy(document))
    return documents


# Most templates print the same text in every environment; parsing it safely (bounds, duplicate
# keys, locations) is slower than the rendering, so each distinct text is parsed once.
_parsed_texts: dict[str, Any] = {}


def _parsed(text: str, file: str) -> Any:
    if text not in _parsed_texts:
        _parsed_texts[text] = parse(text, file).data  # a parse error raises and is not remembered
    return _parsed_texts[text]


def _copy(value: Any) -> Any:
    """A copy of parsed data, so that no caller can change what another one receives."""
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value
