"""The rendered tree of unchanged inputs, kept in the build cache.

`kfgen render` and `kfgen check` (which compares the files on disk with a fresh render) both render
the whole project. What they render is a function of the catalog and the spec, whose key the input
cache already takes (inputcache.Inputs.key: every file below components/, templates among them, the
spec, Python and the installed libraries, Jinja among them), and of kfgen's own code. Keyed on those,
the tree of the last render answers the next command at once; on a miss, rendering (and importing
Jinja) happens as before. The cache checks an entry's integrity as it does any other's.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from .buildcache import digest_text, digest_tree

if TYPE_CHECKING:
    from .inputcache import Inputs
    from .mirror import MirrorInputs
    from .plan import Plan
    from .render import RenderedTree

_PACKAGE = Path(__file__).resolve().parent


@cache
def _code_digest() -> str | None:
    """Every file of the kfgen package: the render's code, with whatever it imports from kfgen."""
    digest = hashlib.sha256()
    return digest.hexdigest() if digest_tree(digest, _PACKAGE, "kfgen", frozenset({"__pycache__"})) else None


def render_key(inputs_key: str | None, mirror_key: str = "") -> str | None:
    code = _code_digest()
    return digest_text("rendered-tree", inputs_key, code, mirror_key) if inputs_key and code else None


def render_cached(plan: Plan, inputs: Inputs | None, mirror_inputs: MirrorInputs | None = None) -> RenderedTree:
    """render(plan), from the cache when the inputs the plan was made from rendered before. The upstream
    files and image lock that mirrored environments read (mirror.py) are part of the key."""
    from .render import RenderedTree

    cache = inputs.cache if inputs else None
    mirror_key = mirror_inputs.digest() if mirror_inputs is not None else ""
    key = render_key(inputs.key, mirror_key) if inputs and cache is not None else None
    stored = cache.get_bytes(key) if key and cache is not None else None
    files = _unpack(stored) if stored is not None else None
    if files is not None:
        return RenderedTree(files)
    from .render import render

    tree = render(plan, mirror_inputs)
    # Templates are read as they render: the tree is kept only if the inputs still have the key.
    if key and inputs is not None and cache is not None and inputs.unchanged():
        cache.put_bytes(key, _pack(tree.files))
    return tree


# An entry is each file's path and bytes, each preceded by a line of their lengths: no encoding to undo,
# which for the 7,800 files of 50 environments JSON would have cost a tenth of a second.
def _pack(files: dict[str, bytes]) -> bytes:
    out: list[bytes] = []
    for path, data in files.items():
        name = path.encode("utf-8")
        out.extend((b"%d %d\n" % (len(name), len(data)), name, data))
    return b"".join(out)


def _unpack(body: bytes) -> dict[str, bytes] | None:
    """The files of an entry; None for one that does not read as an entry (of another kfgen, say)."""
    files: dict[str, bytes] = {}
    at = 0
    try:
        while at < len(body):
            end = body.index(b"\n", at)
            name_length, data_length = (int(n) for n in body[at:end].split(b" "))
            name_end = end + 1 + name_length
            files[body[end + 1:name_end].decode("utf-8")] = body[name_end:name_end + data_length]
            at = name_end + data_length
    except ValueError:  # a missing line end, a bad length or a name that is not UTF-8
        return None
    return files if at == len(body) else None
