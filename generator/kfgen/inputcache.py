"""The validated catalog and spec, remembered in the build cache so that unchanged inputs load at once.

Loading the catalog parses every components/<name>/component.yaml and validates it against its
schema (with jsonschema's import, about 0.15 s); the spec adds its own validation. Each is stored
as one cache entry, keyed on everything that can change what loading returns:

- the catalog: the name, kind and bytes of every file and folder below components/, the kfgen
  modules that load and validate it, the schema files, the installed libraries and Python;
- the spec: its bytes and the name it is reported under, the catalog's key, spec.py and resolve.py.

An entry is written only for a catalog and spec that loaded without error, once the command has
also made its plan from them: an invalid input is never stored, so it is reported again on every
run, and bad input writes nothing, not even here. A catalog with symbolic links (or anything other
than files and folders) below components/ is loaded afresh every time: its contents alone do not
say what loading it finds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import io
import os
import pickle
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePath
from typing import Any, TypeVar

from .buildcache import BuildCache, digest_tree
from .catalog import Catalog, load_catalog
from .schemas import SCHEMA_DIR
from .spec import Platform, load_platform
from .yamlio import MAX_BYTES

_KFGEN = Path(__file__).resolve().parent
# The modules whose code decides what load_catalog returns (tests/test_inputcache.py checks that
# they are all the kfgen modules it imports), and this one, which decides how it is stored.
CATALOG_CODE = ("catalog.py", "data.py", "errors.py", "inputcache.py", "refs.py", "schemas.py", "yamlio.py")
# with the catalog's, through the catalog's key; a variant's `when` is a template expression (variants.py)
SPEC_CODE = ("spec.py", "resolve.py", "sizing.py", "notebooks.py", "variants.py", "templates.py", "embedded.py")


@cache
def _code_digest(modules: tuple[str, ...]) -> str:
    digest = hashlib.sha256(sys.version.encode() + b"\0")
    for name in modules:
        digest.update(name.encode() + b"\0" + hashlib.sha256((_KFGEN / name).read_bytes()).digest())
    for schema in sorted(SCHEMA_DIR.glob("*.json")):
        digest.update(schema.name.encode() + b"\0" + hashlib.sha256(schema.read_bytes()).digest())
    for name in _installed_distributions():
        digest.update(name.encode() + b"\0")
    return digest.hexdigest()


def _installed_distributions() -> list[str]:
    """The distributions (name and version) installed beside jsonschema and PyYAML: an upgrade of either, or
    of what they use, could change what validates. Found without importing them, which is the cost saved."""
    folders = set()
    for module in ("jsonschema", "yaml"):
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.origin:
            folders.add(Path(spec.origin).parent.parent)
    return sorted(f"{folder}/{name}" for folder in folders for name in os.listdir(folder)
                  if name.endswith((".dist-info", ".egg-info")))


def catalog_key(components: Path) -> str | None:
    """The cache key of the catalog in components/, or None when it cannot be keyed on its contents."""
    digest = hashlib.sha256(b"kfgen catalog\0" + _code_digest(CATALOG_CODE).encode())
    try:
        return digest.hexdigest() if digest_tree(digest, components, components.name) else None
    except OSError:
        return None  # an unreadable file: a fresh load says what is wrong


def spec_key(spec: Path, display: str, catalog: str) -> str | None:
    """The cache key of the spec at spec, shown as display, resolved against the catalog of key catalog."""
    try:
        with open(spec, "rb") as handle:
            text = handle.read(MAX_BYTES + 1)
    except OSError:
        return None
    if len(text) > MAX_BYTES:
        return None  # refused by the loader in any case
    digest = hashlib.sha256(b"kfgen spec\0" + _code_digest(CATALOG_CODE + SPEC_CODE).encode())
    for part in (catalog.encode(), display.encode(), text):
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


# Entries are pickles of the catalog's and the spec's own frozen dataclasses: they come back exactly
# as loaded (tuples, Paths, nested dataclasses), without a converter per class to keep in step, and
# load in a fraction of a millisecond. Unpickling can run code, so an entry is read only from the
# project's build cache (which already holds the kustomize output that kfgen trusts and applies),
# only after its sha256 frame matched, and by an unpickler that constructs nothing but these
# dataclasses and paths.
_MODEL_MODULES = ("kfgen.catalog", "kfgen.errors", "kfgen.spec")
_Model = TypeVar("_Model", Catalog, Platform)  # what an entry holds


class _Pickler(pickle.Pickler):
    """Stores paths below root relative to it, so that checkouts at other places share the entry."""

    def __init__(self, file: io.BytesIO, root: Path):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.root = root

    def persistent_id(self, obj: Any) -> str | None:
        if isinstance(obj, PurePath) and obj.is_relative_to(self.root):
            return obj.relative_to(self.root).as_posix()
        return None


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, root: Path):
        super().__init__(file)
        self.root = root

    def persistent_load(self, relative: Any) -> Path:
        if not isinstance(relative, str):
            raise pickle.UnpicklingError("a stored path must be a string")
        return self.root / relative

    def find_class(self, module: str, name: str) -> Any:
        found = getattr(sys.modules[module], name, None) if module in _MODEL_MODULES else None
        if isinstance(found, type) and dataclasses.is_dataclass(found):
            return found
        if module == "pathlib" and name in ("PosixPath", "WindowsPath", "PurePosixPath", "PureWindowsPath"):
            return getattr(sys.modules["pathlib"], name)
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a catalog or a spec")


def _dumps(value: Catalog | Platform, root: Path) -> bytes:
    out = io.BytesIO()
    _Pickler(out, root).dump(value)
    return out.getvalue()


def _loads(body: bytes, root: Path, kind: type[_Model]) -> _Model | None:
    try:
        value = _Unpickler(io.BytesIO(body), root).load()
    except Exception:  # whatever an unreadable entry raises, loading afresh follows
        return None
    return value if isinstance(value, kind) else None


@dataclass
class Inputs:
    """A project's catalog and spec, validated, and the cache entries that remember the ones loaded afresh."""

    catalog: Catalog
    platform: Platform
    cache: BuildCache | None = None
    unsaved: list[tuple[str, bytes]] = field(default_factory=list)
    # The spec's key (which holds the catalog's): what catalog and platform were loaded from, for what is
    # derived from them alone. None when they cannot be keyed or changed while they loaded.
    key: str | None = None
    sources: tuple[Path, Path, str] | None = None  # (components, spec, display), to take the key again

    def remember(self) -> None:
        """Store what was loaded afresh: call once the inputs are known to be valid, the plan made from them."""
        if self.cache is not None:
            for key, body in self.unsaved:
                self.cache.put_bytes(key, body)
        self.unsaved.clear()

    def unchanged(self) -> bool:
        """Whether the inputs still have the key they were loaded under (templates, say, are read later)."""
        if self.key is None or self.sources is None:
            return False
        components, spec, display = self.sources
        catalog = catalog_key(components)
        return catalog is not None and spec_key(spec, display, catalog) == self.key


def _stored(cache: BuildCache | None, key: str | None, root: Path, kind: type[_Model]) -> _Model | None:
    if cache is None or key is None:
        return None
    body = cache.get_bytes(key)
    return None if body is None else _loads(body, root, kind)


def _customizations_present(platform: Platform, root: Path) -> bool:
    """Whether the customization folders of a stored spec are still usable (they are not part of its key)."""
    from .resolve import customization_problem

    folders = {f for env in platform.environments for config in env.components.values() for f in config.customizations}
    return all(customization_problem(folder, root) is None for folder in sorted(folders))


def load_inputs(components: Path, spec: Path, display: str, cache: BuildCache | None) -> Inputs:
    """The catalog in components/ and the spec at spec, from the cache when their inputs are unchanged."""
    unsaved = []
    key = catalog_key(components) if cache is not None else None
    catalog = _stored(cache, key, components, Catalog)
    if catalog is None:
        catalog = load_catalog(components)
        # Kept only if nothing changed while it loaded: an entry must be what its key's inputs give.
        if key and catalog_key(components) == key:
            unsaved.append((key, _dumps(catalog, components)))
        else:
            key = None  # nor may anything loaded against this catalog be kept under it
    keyed_spec = spec_key(spec, display, key) if key else None
    platform = _stored(cache, keyed_spec, components, Platform)
    if platform is not None and not _customizations_present(platform, spec.parent):
        platform = None  # a folder the spec names went missing: loading afresh says where
    if platform is None:
        platform = load_platform(spec, catalog, display)
        if keyed_spec and key and spec_key(spec, display, key) == keyed_spec:
            unsaved.append((keyed_spec, _dumps(platform, components)))
        else:
            keyed_spec = None
    return Inputs(catalog, platform, cache, unsaved, keyed_spec, (components, spec, display))
