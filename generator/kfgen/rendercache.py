"""The rendered tree of unchanged inputs, kept in the build cache.

`kfgen render` and `kfgen check` (which compares the files on disk with a fresh render) both render
the whole project. What they render is a function of the catalog and the spec, whose key the input
cache already takes (inputcache.Inputs.key: every file below components/, templates among them, the
spec, Python and the installed libraries, Jinja among them), and of kfgen's own code. Keyed on those,
the tree of the last render answers the next command at once; on a miss, rendering (and importing
Jinja) happens as before. The entry is JSON of the files' text, checked by the cache like any other.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from .buildcache import digest_text, digest_tree

if TYPE_CHECKING:
    from .inputcache import Inputs
    from .plan import Plan
    from .render import RenderedTree

_PACKAGE = Path(__file__).resolve().parent


@cache
def _code_digest() -> str | None:
    """Every file of the kfgen package: the render's code, with whatever it imports from kfgen."""
    digest = hashlib.sha256()
    return digest.hexdigest() if digest_tree(digest, _PACKAGE, "kfgen", frozenset({"__pycache__"})) else None


def render_key(inputs_key: str | None) -> str | None:
    code = _code_digest()
    return digest_text("rendered-tree", inputs_key, code) if inputs_key and code else None


def render_cached(plan: Plan, inputs: Inputs | None) -> RenderedTree:
    """render(plan), from the cache when the inputs the plan was made from rendered before."""
    from .render import RenderedTree

    cache = inputs.cache if inputs else None
    key = render_key(inputs.key) if inputs and cache is not None else None
    stored = cache.get(key) if key else None
    if stored is not None:
        files = json.loads(stored)["files"]
        return RenderedTree({path: text.encode("utf-8") for path, text in files.items()})
    from .render import render

    tree = render(plan)
    # Templates are read as they render: the tree is kept only if the inputs still have the key.
    if key and inputs.unchanged():
        try:
            texts = {path: data.decode("utf-8") for path, data in tree.files.items()}
        except UnicodeDecodeError:
            return tree  # not text: rendered afresh every time
        cache.put(key, json.dumps({"files": texts}, ensure_ascii=False))
    return tree
