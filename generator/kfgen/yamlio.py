"""Safe YAML in and deterministic YAML out.

Loading keeps the line and column of every value so that errors can point into the file, refuses
duplicate keys, several documents, non-UTF-8 text, oversized files and documents that expand past a
bound (alias bombs). Dumping is deterministic: key order as given, block style, fixed width.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import InputError, Problem

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):
    """Never writes anchors and aliases: generated files are read by people."""

    def ignore_aliases(self, data: Any) -> bool:
        return True

MAX_BYTES = 4 * 1024 * 1024
MAX_NODES = 200_000
MAX_DEPTH = 64

PathKey = tuple[Any, ...]

_SCALAR_TAGS = {
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
_scalar_constructor = yaml.constructor.SafeConstructor()


@dataclass
class Document:
    """A loaded YAML document and where each of its values stands in the file."""

    file: str
    data: Any
    locations: dict[PathKey, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: PathKey) -> tuple[int, int]:
        """Line and column of the value at path, or of its nearest located parent."""
        path = tuple(path)
        while path not in self.locations and path:
            path = path[:-1]
        return self.locations.get(path, (1, 1))

    def problem(self, path: PathKey, message: str) -> Problem:
        line, column = self.locate(path)
        return Problem(self.file, line, column, format_path(path), message)


def format_path(path: PathKey) -> str:
    """Render a path inside a document as `a.b[2].c`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


class _Builder:
    """Turns a composed node graph into plain data, with bounds and duplicate-key checks."""

    def __init__(self, file: str):
        self.file = file
        self.nodes = 0
        self.locations: dict[PathKey, tuple[int, int]] = {}

    def fail(self, node: yaml.Node, path: PathKey, message: str) -> InputError:
        mark = node.start_mark
        return InputError([Problem(self.file, mark.line + 1, mark.column + 1, format_path(path), message)])

    def build(self, node: yaml.Node, path: PathKey, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fail(node, path, f"document expands to more than {MAX_NODES} values (alias bomb?)")
        if depth > MAX_DEPTH:
            raise self.fail(node, path, f"document nests deeper than {MAX_DEPTH} levels")
        self.locations.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise self.fail(key_node, path, "mapping keys must be plain strings")
                key = key_node.value
                if key in result:
                    raise self.fail(key_node, path + (key,), f"duplicate key {key!r}")
                self.locations[path + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                result[key] = self.build(value_node, path + (key,), depth + 1)
                # The key's own position is more useful for errors about the key than the value's.
                self.locations[path + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,), depth + 1) for i, item in enumerate(node.value)]
        if node.tag in _SCALAR_TAGS:
            return _scalar_constructor.construct_object(node)
        return str(node.value)


def parse(text: bytes | str, file: str) -> Document:
    """Parse one YAML document from text, safely; raise InputError with a location otherwise."""
    if isinstance(text, bytes):
        if len(text) > MAX_BYTES:
            raise InputError([Problem(file, 1, 1, "", f"file is larger than {MAX_BYTES} bytes")])
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as err:
            line = text[: err.start].count(b"\n") + 1
            raise InputError([Problem(file, line, 1, "", "file is not valid UTF-8")]) from None
    if len(text) > MAX_BYTES:
        raise InputError([Problem(file, 1, 1, "", f"file is larger than {MAX_BYTES} bytes")])
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = " ".join(str(x) for x in (err.context, err.problem) if x)
        raise InputError([Problem(file, line, column, "", f"invalid YAML: {reason}")]) from None
    except yaml.YAMLError as err:
        raise InputError([Problem(file, 1, 1, "", f"invalid YAML: {err}")]) from None
    if len(nodes) > 1:
        mark = nodes[1].start_mark
        raise InputError([Problem(file, mark.line + 1, 1, "", "expected one YAML document, found several")])
    if not nodes:
        return Document(file, None, {(): (1, 1)})
    builder = _Builder(file)
    data = builder.build(nodes[0], (), 0)
    return Document(file, data, builder.locations)


def load_file(path: Path, display: str | None = None) -> Document:
    display = display or str(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as err:
        raise InputError([Problem(display, 0, 0, "", f"cannot read file: {err.strerror}")]) from None
    return parse(raw, display)


def load_all_plain(text: str) -> list[Any]:
    """Load a stream of trusted machine-made documents (kustomize output) quickly."""
    return [doc for doc in yaml.load_all(text, Loader=_Loader) if doc is not None]


def dump(data: Any) -> str:
    """Deterministic block-style YAML for one document."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100, allow_unicode=True)


def dump_all(documents: list[Any]) -> str:
    return yaml.dump_all(
        documents, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100, allow_unicode=True
    )


def to_json(value: Any) -> str:
    """The only way a template prints a value: as JSON, which is also valid YAML."""
    return json.dumps(value, sort_keys=True, ensure_ascii=True)
