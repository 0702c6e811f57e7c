"""What both schema compilers build on: a schema compiles into nested closures of one signature, which
append (field path, message) pairs to a list of errors.

Field paths are built as linked pairs (parent, key) while validating, which costs a tuple per step, and
are flattened into a dotted path only for the few values that fail.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeAlias

FieldPath: TypeAlias = "tuple[()] | tuple[FieldPath, str | int]"
Errors: TypeAlias = "list[tuple[FieldPath, str]]"
Check: TypeAlias = Callable[[Any, "FieldPath", "Errors"], None]


def flatten(path: FieldPath) -> list[str | int]:
    keys: list[str | int] = []
    while path:
        path, key = path
        keys.append(key)
    keys.reverse()
    return keys


_PLAIN_KEY = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")


def format_path(keys: Iterable[str | int]) -> str:
    out = ""
    for key in keys:
        if isinstance(key, int):
            out += f"[{key}]"
        elif _PLAIN_KEY.match(key):
            out += f".{key}" if out else key
        else:
            out += f"[{json.dumps(key)}]"
    return out


def show(value: Any) -> str:
    """A value as an error message names it: its JSON type, and short scalars themselves."""
    if value is None:
        return "null"
    kind = {bool: "boolean", int: "integer", float: "number", str: "string", dict: "object", list: "array"}.get(type(value), type(value).__name__)
    if isinstance(value, (dict, list)):
        return kind
    text = json.dumps(value)
    return f"{kind} {text if len(text) <= 40 else text[:37] + '...'}"


def unknown_field(key: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return "unknown field" + (f" (did you mean {close[0]!r}?)" if close else "")


def type_test(types: Sequence[str]) -> Callable[[Any], bool]:
    """JSON Schema's type semantics: an integer is an int or an integral float, never a boolean."""
    python: set[type] = set()
    integer = False
    for name in types:
        if name == "integer":
            python.add(int)
            integer = True
        else:
            found = {"string": (str,), "boolean": (bool,), "null": (type(None),), "object": (dict,),
                     "array": (list,), "number": (int, float)}.get(name)
            if found is None:
                raise ValueError(f"unknown type {name!r}")
            python.update(found)
    frozen = frozenset(python)
    if integer and float not in frozen:
        return lambda v: type(v) in frozen or (isinstance(v, float) and v.is_integer())
    return lambda v: type(v) in frozen


def same(a: Any, b: Any) -> bool:
    """Equality as JSON sees it: true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def enum_check(values: list[Any]) -> Check:
    shown = ", ".join(json.dumps(v) for v in values[:8]) + (", ..." if len(values) > 8 else "")
    hashable = all(isinstance(v, str) for v in values)
    fast = frozenset(values) if hashable else frozenset()

    def check(v: Any, p: FieldPath, e: Errors) -> None:
        if hashable and type(v) is str:
            if v in fast:
                return
        elif any(same(v, x) for x in values):
            return
        e.append((p, f"must be one of {shown}; found {show(v)}"))

    return check


def run_all(checks: list[Check]) -> Check:
    if len(checks) == 1:
        return checks[0]

    def run(v: Any, p: FieldPath, e: Errors) -> None:
        for check in checks:
            check(v, p, e)

    return run


def accept(v: Any, p: FieldPath, e: Errors) -> None:
    return None
