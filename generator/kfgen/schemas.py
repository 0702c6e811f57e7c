"""JSON Schema validation of loaded documents, with errors located in the file."""

from __future__ import annotations

import difflib
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from .errors import Problem
from .yamlio import Document

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"


@cache
def load_schema(name: str) -> dict[str, Any]:
    with open(SCHEMA_DIR / name, encoding="utf-8") as handle:
        return json.load(handle)


@cache
def validator_for(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(load_schema(name))


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


_SCHEMA_TYPES = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
                 "number": "a number", "boolean": "a boolean", "null": "null"}


def did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _describe(error: jsonschema.ValidationError) -> list[tuple[tuple[Any, ...], str]]:
    """Turn one jsonschema error into (path, message) pairs a person can act on."""
    path = tuple(error.absolute_path)
    value = error.instance
    if error.validator == "additionalProperties" and isinstance(value, dict):
        known = sorted((error.schema.get("properties") or {}).keys())
        extra = [key for key in value if key not in known]
        return [(path + (key,), f"unknown field {key!r}{did_you_mean(key, known)}; expected one of: {', '.join(known)}")
                for key in extra]
    if error.validator == "required":
        return [(path, error.message.replace("is a required property", "is required but missing"))]
    if error.validator == "type":
        names = [error.validator_value] if isinstance(error.validator_value, str) else error.validator_value
        expected = " or ".join(_SCHEMA_TYPES.get(n, n) for n in names)
        if value is None:
            return [(path, f"expected {expected}, found nothing" + (" (the file is empty)" if not path else ""))]
        return [(path, f"expected {expected}, found {_type_name(value)} {json.dumps(value)[:60]}")]
    if error.validator == "enum":
        options = ", ".join(json.dumps(v) for v in error.validator_value)
        return [(path, f"expected one of {options}, found {json.dumps(value)[:60]}")]
    if error.validator == "const":
        return [(path, f"expected {json.dumps(error.validator_value)}, found {json.dumps(value)[:60]}")]
    if error.validator == "pattern":
        return [(path, f"{json.dumps(value)[:80]} does not match the expected form {error.validator_value}")]
    if error.validator in ("oneOf", "anyOf") and error.context:
        best = jsonschema.exceptions.best_match(error.context)
        return _describe(best)
    return [(path, error.message)]


def validate(document: Document, schema_name: str, data: Any = None, prefix: tuple[Any, ...] = ()) -> list[Problem]:
    """Validate data (the whole document by default) and return every problem, located."""
    data = document.data if data is None else data
    problems = []
    for error in validator_for(schema_name).iter_errors(data):
        for path, message in _describe(error):
            problems.append(document.problem(prefix + path, message))
    return problems


def validate_with(document: Document, schema: dict[str, Any], data: Any, prefix: tuple[Any, ...]) -> list[Problem]:
    """Validate data found at prefix in document against an inline schema (a component's settings)."""
    problems = []
    for error in jsonschema.Draft202012Validator(schema).iter_errors(data):
        for path, message in _describe(error):
            problems.append(document.problem(prefix + path, message))
    return problems
