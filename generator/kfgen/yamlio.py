"""Safe YAML in and deterministic YAML out.

Loading keeps the line and column of every value so that errors can point into the file, refuses
duplicate keys, several documents, non-UTF-8 text, oversized files, documents that expand past a
bound (alias bombs) or refer to themselves, merge keys and tags other than YAML's plain types.
Dumping is deterministic: key order as given, block style, fixed width.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, cast

import yaml

from .errors import InputError, Problem

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
if TYPE_CHECKING:  # the stubs' SafeDumper stands for both: CSafeDumper has its methods, written in C
    _BaseDumper = yaml.SafeDumper
else:
    _BaseDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):
    """Never writes anchors and aliases: generated files are read by people."""

    def ignore_aliases(self, data: Any) -> bool:
        return True

MAX_BYTES = 4 * 1024 * 1024
MAX_NODES = 200_000
MAX_DEPTH = 64

PathKey = tuple[Any, ...]
# A YAML mapping as loaded or as it will be dumped: a Kubernetes object, a kustomization, a spec.
Manifest = dict[str, Any]

_SCALAR_TAGS = {
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
# Timestamps stay strings: YAML 1.2 has no such type, and a date in an image tag or a name is meant as text.
_STRING_TAGS = {"tag:yaml.org,2002:str", "tag:yaml.org,2002:timestamp"}
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_scalar_constructor = yaml.constructor.SafeConstructor()
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_$][A-Za-z0-9_$-]*$")


@dataclass
class Document:
    """A loaded YAML document and where each of its values stands in the file."""

    file: str
    data: Any
    locations: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    # The text as written of scalars that did not load as strings, for hints such as "quote it".
    source: dict[PathKey, str] = field(default_factory=dict)

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
    """Render a path inside a document as `a.b[2].c`; other keys are quoted, as `a["x.y"]`.

    Quoting keeps every error on one line and unambiguous whatever the keys hold (dots, newlines).
    """
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(str(part)):
            out += ("." if out else "") + str(part)
        else:
            out += f"[{json.dumps(str(part))}]"
    return out


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class _Builder:
    """Turns a composed node graph into plain data, with bounds and duplicate-key checks."""

    def __init__(self, file: str):
        self.file = file
        self.locations: dict[PathKey, tuple[int, int]] = {}
        self.source: dict[PathKey, str] = {}

    @staticmethod
    def tag(node: yaml.Node) -> str:
        return node.tag.replace("tag:yaml.org,2002:", "!!")

    def fail(self, node: yaml.Node, path: PathKey, message: str) -> InputError:
        mark = node.start_mark
        return InputError([Problem(self.file, mark.line + 1, mark.column + 1, format_path(path), message)])

    def measure(self, root: yaml.Node) -> None:
        """Refuse, before building anything, a graph that is too deep, recursive or too large once expanded.

        Aliases make the node graph a DAG whose expansion can be exponential in the file's size (the
        billion laughs): sizes are counted once per distinct node, so this costs what the file costs.
        """
        measured: dict[int, tuple[int, int]] = {}  # node -> (values once expanded, levels below it)
        open_nodes: set[int] = set()

        def walk(node: yaml.Node, path: PathKey, depth: int) -> tuple[int, int]:
            key = id(node)
            if key in open_nodes:
                raise self.fail(node, path, "an alias refers to the collection that contains it (recursive alias)")
            if key not in measured:
                open_nodes.add(key)
                total, height = 1, 0
                children: list[tuple[yaml.Node, PathKey]] = []
                if isinstance(node, yaml.MappingNode):
                    for key_node, value_node in node.value:
                        name = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
                        children += [(key_node, path), (value_node, path + (name,))]
                elif isinstance(node, yaml.SequenceNode):
                    children = [(item, path + (index,)) for index, item in enumerate(node.value)]
                for child, child_path in children:
                    if depth + 1 > MAX_DEPTH:
                        raise self.fail(child, child_path, f"document nests deeper than {MAX_DEPTH} levels")
                    child_total, child_height = walk(child, child_path, depth + 1)
                    total += child_total
                    height = max(height, child_height + 1)
                    if total > MAX_NODES:
                        raise self.fail(node, path, f"document expands to more than {MAX_NODES} values (alias bomb?)")
                open_nodes.discard(key)
                measured[key] = (total, height)
            total, height = measured[key]
            # An alias can graft a deep collection onto a deep place: the expanded depth counts.
            if depth + height > MAX_DEPTH:
                raise self.fail(node, path, f"document nests deeper than {MAX_DEPTH} levels")
            return total, height

        walk(root, (), 0)

    def build(self, node: yaml.Node, path: PathKey) -> Any:
        self.locations.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.MappingNode):
            if node.tag != _MAP_TAG:
                raise self.fail(node, path, f"unsupported YAML tag {self.tag(node)}; only plain mappings, lists and scalars are allowed")
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise self.fail(key_node, path, "mapping keys must be plain strings")
                key = key_node.value
                if key == "<<" and key_node.tag == "tag:yaml.org,2002:merge":
                    raise self.fail(key_node, path, "YAML merge keys (<<) are not supported; write the fields out")
                if key in result:
                    raise self.fail(key_node, path + (key,), f"duplicate key {key!r}")
                self.locations[path + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                result[key] = self.build(value_node, path + (key,))
                # The key's own position is more useful for errors about the key than the value's.
                self.locations[path + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            return result
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ_TAG:
                raise self.fail(node, path, f"unsupported YAML tag {self.tag(node)}; only plain mappings, lists and scalars are allowed")
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        if node.tag in _SCALAR_TAGS:
            try:
                value = _scalar_constructor.construct_object(node)
            except (ValueError, KeyError, TypeError, yaml.YAMLError):
                raise self.fail(node, path, f"{node.value!r} is not a valid {self.tag(node)}") from None
            self.source[path] = node.value
            return value
        if node.tag not in _STRING_TAGS:
            raise self.fail(node, path, f"unsupported YAML tag {self.tag(node)}; only plain mappings, lists and scalars are allowed")
        return str(node.value)


class _Frame:
    """An open collection while scanning events: its path and where the next child goes."""

    def __init__(self, path: PathKey, mapping: bool):
        self.path = path
        self.mapping = mapping
        self.expect_key = True
        self.key: Any = None
        self.index = 0

    def child_path(self, event: yaml.Event) -> PathKey:
        if not self.mapping:
            self.index += 1
            return self.path + (self.index - 1,)
        self.expect_key = not self.expect_key
        if not self.expect_key:  # this event is a key
            self.key = event.value if isinstance(event, yaml.ScalarEvent) else "?"
            return self.path
        return self.path + (self.key,)


def _check_nesting(text: str, file: str) -> None:
    """Refuse deep nesting from the event stream, before composing: libyaml composes recursively in C,
    and a few megabytes of `[` would crash the process instead of raising an error."""
    stack: list[_Frame] = []
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.ScalarEvent | yaml.AliasEvent | yaml.CollectionStartEvent):
            path = stack[-1].child_path(event) if stack else ()
            if len(stack) > MAX_DEPTH:
                mark = event.start_mark
                assert mark is not None  # the parser marks every event
                raise InputError([Problem(file, mark.line + 1, mark.column + 1, format_path(path),
                                          f"document nests deeper than {MAX_DEPTH} levels")])
            if isinstance(event, yaml.CollectionStartEvent):
                stack.append(_Frame(path, isinstance(event, yaml.MappingStartEvent)))
        elif isinstance(event, yaml.CollectionEndEvent):
            stack.pop()


def _too_large(file: str) -> InputError:
    return InputError([Problem(file, 1, 1, "", f"file is larger than {MAX_BYTES // (1024 * 1024)} MiB ({MAX_BYTES} bytes)")])


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def parse(text: bytes | str, file: str) -> Document:
    """Parse one YAML document from text, safely; raise InputError with a location otherwise."""
    if len(text) > MAX_BYTES:
        raise _too_large(file)
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as err:
            prefix = cast(bytes, text)[: err.start].decode("utf-8", "replace")
            line, column = _position(prefix, len(prefix))
            raise InputError([Problem(file, line, column, "", f"file is not valid UTF-8 (byte 0x{text[err.start]:02x})")]) from None
    try:
        _check_nesting(text, file)
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = _one_line(" ".join(str(x) for x in (err.context, err.problem) if x))
        raise InputError([Problem(file, line, column, "", f"invalid YAML: {reason}")]) from None
    except yaml.reader.ReaderError as err:
        line, column = _position(text, err.position)
        code = err.character if isinstance(err.character, int) else ord(str(err.character)[:1] or "\0")
        raise InputError([Problem(file, line, column, "", f"invalid YAML: {err.reason} (found U+{code:04X})")]) from None
    except yaml.YAMLError as err:
        raise InputError([Problem(file, 1, 1, "", f"invalid YAML: {_one_line(str(err))}")]) from None
    if len(nodes) > 1:
        mark = nodes[1].start_mark
        raise InputError([Problem(file, mark.line + 1, 1, "", "expected one YAML document, found several")])
    if not nodes:
        return Document(file, None, {(): (1, 1)})
    builder = _Builder(file)
    builder.measure(nodes[0])
    data = builder.build(nodes[0], ())
    return Document(file, data, builder.locations, builder.source)


def load_file(path: Path, display: str | None = None) -> Document:
    display = display or str(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as err:
        raise InputError([Problem(display, 0, 0, "", f"cannot read file: {err.strerror}")]) from None
    return parse(raw, display)


def load_plain(text: str) -> Any:
    """Load one trusted document (a generated or upstream kustomization) with the C loader."""
    return yaml.load(text, Loader=_Loader)


def load_all_plain(text: str) -> list[Manifest]:
    """Load a stream of trusted machine-made documents (kustomize output) quickly."""
    return [doc for doc in yaml.load_all(text, Loader=_Loader) if doc is not None]


def load_kind(text: str, kind: str) -> list[Manifest]:
    """The documents of one kind in a trusted stream, parsing only those: a document marker at the start of
    a line always ends a document, so the others are skipped unread."""
    chunks = re.split(r"(?m)^---[ \t]*$", text)
    return [d for chunk in chunks if f"kind: {kind}" in chunk for d in load_all_plain(chunk)
            if isinstance(d, dict) and d.get("kind") == kind]


class _DumpOptions(TypedDict):
    Dumper: type[_Dumper]
    sort_keys: bool
    default_flow_style: bool
    width: int
    allow_unicode: bool


# The dumper's settings; the fast writer below reproduces exactly what they produce.
_WIDTH = 100
_DUMP_OPTIONS: _DumpOptions = {
    "Dumper": _Dumper, "sort_keys": False, "default_flow_style": False, "width": _WIDTH, "allow_unicode": True,
}


def dump(data: Any) -> str:
    """Deterministic block-style YAML for one document."""
    try:
        return _write_document(data)
    except _NotSimple:
        return yaml.dump(data, **_DUMP_OPTIONS)


def dump_all(documents: list[Any]) -> str:
    """Deterministic block-style YAML for several documents, separated by `---`."""
    try:
        return "---\n".join(_write_document(document) for document in documents)
    except _NotSimple:
        return yaml.dump_all(documents, **_DUMP_OPTIONS)


# The fast writer. PyYAML's representer is pure Python and walks every value through generic
# dispatch, then libyaml calls back into Python twice per scalar to resolve its tag: rendering
# 50 environments spent most of its time there. Generated documents are almost all nested
# mappings and lists of short ASCII strings, integers, booleans and nulls, whose block-style
# layout is fixed; the writer handles exactly those and raises _NotSimple for anything else
# (floats, multi-line or non-ASCII text, long lines that libyaml would fold, unusual keys), so
# that the whole document goes to PyYAML and the bytes never depend on which path wrote them.
# tests/test_speed_invariants.py compares both paths on a corpus of tricky values.


class _NotSimple(Exception):
    """A value the fast writer leaves to PyYAML."""


# Strings libyaml writes as they are (plain) or in single quotes without any escaping: printable
# ASCII, no indicator at the start, single spaces between words, no `: ` or ` #`, no quotes.
_SIMPLE_TEXT = re.compile(r"[A-Za-z0-9_./$^(-][A-Za-z0-9_./$^()|*+=@%!&<>~;:,?\[\]{}-]*"
                          r"(?: [A-Za-z0-9_./$^()|*+=@%!&<>~;,?\[\]{}-][A-Za-z0-9_./$^()|*+=@%!&<>~;:,?\[\]{}-]*)*")
_STR_TAG = "tag:yaml.org,2002:str"
_resolver = yaml.resolver.Resolver()  # the resolver CSafeDumper asks whether a plain scalar reads back as a string
_written: dict[str, str | None] = {}  # text -> as written (itself or in quotes), None when not simple


def _text(text: str) -> str | None:
    """How libyaml writes text in block context, or None when the fast writer must not."""
    if text in _written:
        return _written[text]
    written: str | None
    if text == "":
        written = "''"
    elif (not _SIMPLE_TEXT.fullmatch(text) or text.startswith(("...", "---", "- ")) or text == "-"
          or text.endswith(":") or ": " in text):
        written = None
    elif _resolver.resolve(yaml.ScalarNode, text, (True, False)) == _STR_TAG:
        written = text
    else:  # reads back as a number, boolean, null or date: quoted, unless it has spaces to fold
        written = None if " " in text else f"'{text}'"
    _written[text] = written
    return written


def _scalar(value: Any, column: int) -> str:
    """A scalar written at column, as libyaml writes it; _NotSimple for anything else."""
    kind = type(value)
    if kind is str:
        written = _text(value)
        # libyaml folds a plain scalar at a space past the width: only lines that fit stay simple.
        if written is None or (column + len(value) > _WIDTH and " " in value):
            raise _NotSimple
        return written
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if value is None:
        return "null"
    raise _NotSimple


def _key(key: Any) -> str:
    # Long keys become complex keys (`? key`) in libyaml; an empty key is rare enough to leave to it.
    written = _text(key) if type(key) is str and 0 < len(key) <= _WIDTH else None
    if written is None:
        raise _NotSimple
    return written


def _write_mapping(data: dict[Any, Any], indent: int, lead: str, out: list[str]) -> None:
    """A block mapping at indent; lead stands before its first key (indentation or `- ` markers)."""
    pad = " " * indent
    for key, value in data.items():
        start = f"{lead}{_key(key)}:"
        lead = pad
        kind = type(value)
        if kind is dict:
            if value:
                out.append(start)
                _write_mapping(value, indent + 2, pad + "  ", out)
            else:
                out.append(start + " {}")
        elif kind is list or kind is tuple:
            if value:
                out.append(start)
                _write_sequence(value, indent, pad, out)  # libyaml does not indent a list under a key
            else:
                out.append(start + " []")
        else:
            out.append(f"{start} {_scalar(value, len(start) + 1)}")


def _write_sequence(data: list[Any] | tuple[Any, ...], indent: int, lead: str, out: list[str]) -> None:
    """A block sequence whose `- ` markers stand at indent; lead stands before the first marker."""
    pad = " " * indent
    for item in data:
        marker = f"{lead}- "
        lead = pad
        kind = type(item)
        if kind is dict:
            if item:
                _write_mapping(item, indent + 2, marker, out)
            else:
                out.append(marker + "{}")
        elif kind is list or kind is tuple:
            if item:
                _write_sequence(item, indent + 2, marker, out)
            else:
                out.append(marker + "[]")
        else:
            out.append(marker + _scalar(item, len(marker)))


# Environments mostly share their overlays' documents (the same replicas patch, the same kustomization),
# so the writer keeps what it wrote by the document's repr, which its C implementation makes many times
# cheaper than writing. Only documents of the plain types the writer takes are kept, whose repr is
# unambiguous (1 and '1', True and 1 differ). Bounded, as tests render many projects in one process.
_DOCUMENTS_KEPT = 20_000
_documents: dict[str, str] = {}


def _write_document(data: Any) -> str:
    key = repr(data)
    written = _documents.get(key)
    if written is None:
        written = _write_new_document(data)
        if len(_documents) >= _DOCUMENTS_KEPT:
            _documents.clear()
        _documents[key] = written
    return written


def _write_new_document(data: Any) -> str:
    out: list[str] = []
    if type(data) is dict and data:
        _write_mapping(data, 0, "", out)
    elif type(data) in (list, tuple) and data:
        _write_sequence(data, 0, "", out)
    else:
        raise _NotSimple  # a lone scalar or an empty document: rare, and libyaml may end it with `...`
    out.append("")
    return "\n".join(out)


def to_json(value: Any) -> str:
    """The only way a template prints a value: as JSON, which is also valid YAML."""
    return json.dumps(value, sort_keys=True, ensure_ascii=True)
