"""JSON Schema validation of loaded documents, with errors located in the file."""

from __future__ import annotations

import difflib
import json
from functools import cache
from typing import TYPE_CHECKING, Any

from .data import SCHEMAS
from .errors import Problem
from .yamlio import Document

# jsonschema is imported when something is validated: its import costs about 60 ms, which a command
# whose catalog and spec were validated by an earlier run need not pay.
if TYPE_CHECKING:
    import jsonschema

SCHEMA_DIR = SCHEMAS

# What the schemas' recurring patterns mean, so that an error says what is wanted rather than a regex.
PATTERN_NAMES = {
    "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$":
        "a DNS-1123 label (lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters)",
    "^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$":
        "a DNS name (DNS-1123 labels joined by dots, at most 253 characters)",
    "^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}$": "an email address",
    "^[0-9]+(\\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$": "a Kubernetes quantity (such as 100m, 2 or 256Mi)",
    "^sha256:[a-f0-9]{64}$": "an image digest (sha256: and 64 lower-case hex digits)",
    "^1\\.[0-9]{2}$": 'a Kubernetes minor version (such as "1.33")',
    "^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._/-]*)?$": "an https:// URL",
    "^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9._-]+)*$": "a registry, as host[:port][/path] in lower case",
    "^((https?://|ssh://git@)[A-Za-z0-9.-]+(:[0-9]{1,5})?/[A-Za-z0-9._~/-]+)$":
        "a git repository URL (https://, http:// or ssh://git@, then host[:port]/path)",
    "^[A-Za-z0-9._/{}-]{1,200}$": "a branch name template (letters, digits, '.', '_', '-', '/' and {env})",
    "^(https?://|ssh://git@)[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~-]+)*/[A-Za-z0-9._~-]+\\.git$":
        "a git repository URL that ends in .git (https://, http:// or ssh://git@, then host[:port]/path.git)",
}


@cache
def load_schema(name: str) -> dict[str, Any]:
    with open(SCHEMA_DIR / name, encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    return schema


@cache
def _validator_class() -> type[jsonschema.protocols.Validator]:
    import jsonschema

    # YAML loads 2.0 as a float; jsonschema would call it an integer, and it would then be rendered as 2.0
    # into fields Kubernetes reads as integers.
    extended: type[jsonschema.protocols.Validator] = jsonschema.validators.extend(  # type: ignore[no-untyped-call]  # unannotated in its stubs
        jsonschema.Draft202012Validator,
        type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
            "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)),
    )
    return extended


@cache
def validator_for(name: str) -> jsonschema.protocols.Validator:
    return _validator_class()(load_schema(name))


def schema_error(schema: dict[str, Any]) -> tuple[tuple[Any, ...], str] | None:
    """Where in schema and why it is not a valid draft 2020-12 JSON Schema; None when it is one."""
    import jsonschema

    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as err:
        return tuple(err.absolute_path), err.message
    return None


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


_SCHEMA_TYPES = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
                 "number": "a number", "boolean": "a boolean", "null": "null"}


def did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def show(value: Any, limit: int = 60) -> str:
    """A value as JSON on one line (control characters escaped), shortened to about limit characters."""
    text = json.dumps(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _found(value: Any, written: str | None, typed: bool = True) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, str) and not typed:
        return show(value)
    if written is not None and not isinstance(value, str | list | dict):
        return f"{_type_name(value)} {show(written)[1:-1]}"  # as written: 1.30, not 1.3
    return f"{_type_name(value)} {show(value)}"


def _conditions(schema: Any, path: tuple[str, ...] = ()) -> list[str]:
    """The `const` or `enum` values an `if` schema asks for, as `field is value` or `field is a or b`."""
    found: list[str] = []
    if isinstance(schema, dict):
        if "const" in schema:
            found.append(f"{'.'.join(path)} is {json.dumps(schema['const'])}")
        elif isinstance(schema.get("enum"), list):
            found.append(f"{'.'.join(path)} is {' or '.join(json.dumps(v) for v in schema['enum'])}")
        for name, sub in (schema.get("properties") or {}).items():
            found.extend(_conditions(sub, path + (name,)))
    return found


def _walk(node: Any, steps: list[Any]) -> Any:
    for step in steps:
        found = (isinstance(node, dict) and step in node) or (isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node))
        if not found:
            return None
        node = node[step]
    return node


def _refused(error: jsonschema.ValidationError, root: Any, data: Any) -> tuple[tuple[Any, ...], str]:
    """A field a `false` schema refuses: its path (jsonschema leaves the field's name out), and why it is
    out of place, from the `if` of the if/else it sits in."""
    path = tuple(error.absolute_path)
    schema_path = list(error.absolute_schema_path)
    properties = _walk(root, schema_path)
    present = _walk(data, list(path))
    if isinstance(properties, dict) and isinstance(present, dict):
        names = [name for name, sub in properties.items() if sub is False and name in present and present[name] == error.instance]
        if names:
            path += (names[0],)
    reason = ""
    if "else" in schema_path:
        where = schema_path[:len(schema_path) - schema_path[::-1].index("else") - 1]
        conditions = _conditions(_walk(root, where + ["if"]))
        if conditions:
            reason = f": it applies only when {' and '.join(conditions)}"
    return path, f"not allowed here{reason}"


def _describe(error: jsonschema.ValidationError, document: Document, prefix: tuple[Any, ...],
              root: Any = None, data: Any = None) -> list[tuple[tuple[Any, ...], str]]:
    """Turn one jsonschema error into (path, message) pairs a person can act on."""
    path = tuple(error.absolute_path)
    if error.schema is False:
        return [_refused(error, root, data)]
    value = error.instance
    kind = error.validator
    wanted: Any = error.validator_value  # the failed keyword's value in the schema: any JSON
    schema: Any = error.schema
    if "propertyNames" in error.absolute_schema_path and isinstance(value, str):
        # The instance is a key of the mapping at path: point at the key itself.
        path, kind = path + (value,), f"name-{kind}"
        if kind == "name-pattern" and wanted in PATTERN_NAMES:
            return [(path, f"the name {show(value)} is not {PATTERN_NAMES[wanted]}")]
        return [(path, f"the name {show(value)} is not allowed: {error.message}")]
    if kind == "additionalProperties" and isinstance(value, dict):
        known = sorted((schema.get("properties") or {}).keys())
        extra = [key for key in value if key not in known]
        return [(path + (key,), f"unknown field {key!r}{did_you_mean(key, known)}; expected one of: {', '.join(known)}")
                for key in extra]
    if kind == "required" and isinstance(value, dict):
        return [(path + (name,), "missing required field") for name in wanted if name not in value]
    if kind == "type":
        names = [wanted] if isinstance(wanted, str) else wanted
        expected = " or ".join(_SCHEMA_TYPES.get(n, n) for n in names)
        if value is None and not path:
            return [(path, f"expected {expected}, found nothing (the document is empty)")]
        written = document.source.get(prefix + path)
        message = f"expected {expected}, found {_found(value, written)}"
        if "string" in names and written and value is not None and not isinstance(value, str | list | dict):
            message += f" (write {show(written)} in quotes for a string)"
        return [(path, message)]
    if kind == "enum":
        options = ", ".join(json.dumps(v) for v in wanted)
        hint = did_you_mean(value, [v for v in wanted if isinstance(v, str)]) if isinstance(value, str) else ""
        return [(path, f"expected one of {options}, found {_found(value, document.source.get(prefix + path), typed=False)}{hint}")]
    if kind == "const":
        return [(path, f"expected {json.dumps(wanted)}, found {_found(value, document.source.get(prefix + path), typed=False)}")]
    if kind == "pattern":
        name = PATTERN_NAMES.get(wanted)
        if name:
            return [(path, f"{show(value, 80)} is not {name}")]
        return [(path, f"{show(value, 80)} does not match the expected form {wanted}")]
    if kind in ("minimum", "maximum"):
        bound = "less than the minimum" if kind == "minimum" else "more than the maximum"
        return [(path, f"{show(value)} is {bound} of {wanted}")]
    if kind == "minItems" and isinstance(value, list):
        return [(path, f"needs at least {wanted} item{'s' if wanted != 1 else ''}, found {len(value) or 'none'}")]
    if kind == "maxItems" and isinstance(value, list):
        return [(path, f"allows at most {wanted} items, found {len(value)}")]
    if kind == "maxProperties" and isinstance(value, dict):
        return [(path, f"allows at most {wanted} field{'s' if wanted != 1 else ''}, found {len(value)}: {', '.join(map(str, value))}")]
    if kind == "minLength" and isinstance(value, str):
        return [(path, f"{show(value)} is shorter than {wanted} characters")]
    if kind == "maxLength" and isinstance(value, str):
        return [(path, f"is {len(value)} characters long, more than the maximum of {wanted}")]
    if kind == "uniqueItems" and isinstance(value, list):
        seen: list[Any] = []
        found = []
        for index, item in enumerate(value):
            if item in seen:
                found.append((path + (index,), f"{show(item)} is listed more than once"))
            else:
                seen.append(item)
        return found or [(path, "items must be unique")]
    if kind in ("oneOf", "anyOf") and error.context:
        from jsonschema.exceptions import best_match  # loaded already: error came from a validator

        best = best_match(error.context)
        return _describe(best, document, prefix, root, data)
    return [(path, " ".join(error.message.split()))]


def _problems(document: Document, validator: jsonschema.protocols.Validator, data: Any, prefix: tuple[Any, ...]) -> list[Problem]:
    problems = []
    for error in validator.iter_errors(data):
        for path, message in _describe(error, document, prefix, validator.schema, data):
            problems.append(document.problem(prefix + path, message))
    return sorted(set(problems))


def validate(document: Document, schema_name: str, data: Any = None, prefix: tuple[Any, ...] = ()) -> list[Problem]:
    """Validate data (the whole document by default) and return every problem, located."""
    return _problems(document, validator_for(schema_name), document.data if data is None else data, prefix)


def validate_with(document: Document, schema: dict[str, Any], data: Any, prefix: tuple[Any, ...]) -> list[Problem]:
    """Validate data found at prefix in document against an inline schema (a component's settings)."""
    return _problems(document, _validator_class()(schema), data, prefix)
