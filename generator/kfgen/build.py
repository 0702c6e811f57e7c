"""Building: the real kustomize on each rendered component overlay, in parallel, read back as objects.

Building only reads the rendered tree (and vendor/); it never writes into the project. In remote
source mode it builds a temporary copy whose remote bases are resolved from the source caches.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .buildcache import BuildCache, digest_contents, digest_files, digest_text, read_files
from .errors import BuildError, InputError
from .kustomize import KUSTOMIZE_VERSION, KustomizePool, find_kustomize_worker
from .plan import EnvironmentPlan, PlannedComponent
from .refs import RemoteDir, parse_remote
from .sources import LOCK_FILE, SourceCache, vendor, verify_vendor, write_lock
from .tools import find_tool, tool_identity
from .yamlio import Manifest, dump, load_all_plain, load_kind, load_plain


@dataclass
class ComponentBuild:
    name: str
    wave: int
    # kustomize's output, or what reads it back: a check that takes the objects from their cached JSON
    # never reads the YAML of a base's CRDs, which are most of the bytes (see the text property).
    yaml: str | Callable[[], str] = field(repr=False)
    seconds: float
    cached: bool = False
    key: str = ""  # the build cache key of this output
    json_lines: str | None = field(default=None, repr=False)  # one JSON object per line, when converted
    _objects: list[Manifest] | None = field(default=None, repr=False)
    # Not an init field: a copy made with other _objects (dataclasses.replace) has no digests of its own.
    _digests: list[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def text(self) -> str:
        """kustomize's output, read on first use."""
        self.yaml = _read(self.yaml)
        return self.yaml

    @property
    def objects(self) -> list[Manifest]:
        """Parsed on first use: from the JSON lines the build converted, else from the YAML text."""
        if self._objects is None:
            if self.json_lines is not None:
                lines = [line for line in self.json_lines.splitlines() if line]
                self._objects = [json.loads(line) for line in lines]
                self._digests = [hashlib.sha256(line.encode()).digest() for line in lines]
            else:
                self._objects = load_all_plain(self.text)
        return self._objects

    @property
    def object_digests(self) -> list[bytes] | None:
        """sha256 of each object's JSON line, as built; None when the objects did not come from JSON lines."""
        self.objects  # noqa: B018 (parsing is what sets the digests)
        return self._digests


@dataclass(frozen=True)
class EnvironmentBuild:
    environment: str
    components: tuple[ComponentBuild, ...]  # in dependency order
    seconds: float

    @property
    def objects(self) -> list[Manifest]:
        return [obj for c in self.components for obj in c.objects]


def find_yaml2json(project_root: Path) -> str | None:
    """The project's YAML-to-JSON converter (tools/yaml2json), built by `make tools`; optional."""
    return find_tool("yaml2json", project_root, required=False)


def yaml_to_json_lines(converter: str, text: str) -> str:
    result = subprocess.run([converter], input=text, capture_output=True, text=True)
    if result.returncode != 0:
        raise BuildError(f"cannot convert kustomize output to JSON: {result.stderr.strip()}")
    return result.stdout


def cached_json_lines(converter: str, text: str | Callable[[], str], cache: BuildCache | None, key: str) -> str:
    """yaml_to_json_lines, kept in cache (when there is one) under key; text, when a function, is called
    only if the cache does not hold the lines."""
    stored = cache.get(key) if cache is not None else None
    if stored is None:
        text = _read(text)
        stored = yaml_to_json_lines(converter, text) if text else ""
        if cache is not None:
            cache.put(key, stored)
    return stored


@contextmanager
def build_tree(project_root: Path, source_mode: str, cache: SourceCache, mirrors: Mapping[str, str] | None = None) -> Iterator[Path]:
    """The tree to build from: the project itself when vendored (after checking vendor/ against
    the lock), or a temporary copy whose remote bases point at sources from the caches (a base that
    names a mirror gets the upstream repository it mirrors)."""
    if source_mode == "vendored":
        verify_vendor(project_root)
        yield project_root
        return
    with tempfile.TemporaryDirectory(prefix="kfgen-build-") as workdir:
        tree = Path(workdir)
        shutil.copytree(project_root / "overlays", tree / "overlays")
        shutil.copytree(project_root / "base", tree / "base")
        bases = sorted((tree / "base").glob("*/kustomization.yaml"))
        roots: dict[str, RemoteDir] = {}
        documents: dict[Path, Manifest] = {}
        for path in bases:
            documents[path] = load_plain(path.read_text(encoding="utf-8"))
            for field in ("resources", "components"):
                for entry in documents[path].get(field) or []:
                    remote = parse_remote(entry, mirrors)
                    if isinstance(remote, RemoteDir):
                        roots[entry] = remote
        write_lock(tree / LOCK_FILE, vendor(sorted(set(roots.values())), cache, tree / "vendor"))
        for path, document in documents.items():
            for field in ("resources", "components"):
                document[field] = [os.path.relpath(tree / "vendor" / roots[e].relpath, path.parent) if e in roots else e
                                   for e in document.get(field) or []] or None
            path.write_text(dump({k: v for k, v in document.items() if v is not None}), encoding="utf-8")
        yield tree


_CRD = re.compile(r"^kind: CustomResourceDefinition$", re.MULTILINE)
_CRD_PART = "-crds"  # ends the cache key of a base's CRDs, an output part of its own


def split_crds(text: str) -> tuple[str, str]:
    """kustomize output split into its CustomResourceDefinitions and everything else."""
    crds: list[str] = []
    rest: list[str] = []
    for document in text.split("\n---\n"):
        document = document.strip("\n")
        if document and document != "---":
            (crds if _CRD.search(document) else rest).append(document.removeprefix("---\n") + "\n")
    return "---\n".join(crds), "---\n".join(rest)


def _read(text: str | Callable[[], str]) -> str:
    """Output YAML held as text, or read by calling what stands in for it."""
    return text if isinstance(text, str) else text()


def _join(*texts: str) -> str:
    return "---\n".join(t for t in texts if t)


class Builder:
    """Builds component overlays; shared by the environments of one run.

    Each component's base (the upstream sources, identical in every environment) is built once and
    split: its CRDs, most of the platform's bytes, are kept aside, and each environment's overlay
    is built on the remaining objects only. Overlays that patch CRDs or merge into upstream generators
    are built directly instead, so the result always equals building the overlay directly. Base and
    overlay outputs are cached by content.
    """

    def __init__(self, project_root: Path, tree: Path, cache: BuildCache | None = None):
        worker = find_kustomize_worker(project_root)
        # One worker starts at once: a check that reaches the Builder has almost always something to build.
        self.kustomize = KustomizePool(worker, ready=1)
        weakref.finalize(self, self.kustomize.close)  # the workers exit with the Builder at the latest
        self.converter = find_yaml2json(project_root)
        self.tree = tree
        self.cache = cache
        lock = tree / LOCK_FILE
        self.inputs = digest_text(KUSTOMIZE_VERSION, tool_identity(worker),
                                  lock.read_text(encoding="utf-8") if lock.is_file() else "")
        self._base_keys: dict[str, str] = {}
        self._bases: dict[str, tuple[str, str]] = {}  # (CRDs, other objects), for bases read or built
        self._base_tree: str | None = None  # the digest of every base, for overlays built on their own
        self._crd_json: dict[str, str] = {}  # the JSON lines of bases' CRDs, shared by every environment
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def close(self) -> None:
        """Stop the kustomize workers (they also stop when the Builder is collected)."""
        self.kustomize.close()

    def __enter__(self) -> Builder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _cached(self, key: str, make: Callable[[], str]) -> tuple[str, bool]:
        if self.cache is not None:
            text = self.cache.get(key)
            if text is not None:
                return text, True
        text = make()
        if self.cache is not None:
            self.cache.put(key, text)
        return text, False

    def json_lines(self, output: OverlayOutput) -> str | None:
        """The objects of an output as JSON lines, converted outside the interpreter's lock. Each part is
        converted and cached on its own: a base's CRDs once for every environment."""
        if self.converter is None:
            return None
        return "".join(self._json_part(key, text) for key, text in output.parts)

    def _json_part(self, key: str, text: str | Callable[[], str]) -> str:
        assert self.converter is not None  # json_lines asks for parts only with a converter
        if key not in self._crd_json:
            lines = cached_json_lines(self.converter, text, self.cache, f"{key}-json")
            if key.endswith(_CRD_PART):
                self._crd_json[key] = lines
            return lines
        return self._crd_json[key]

    def base_key(self, component: str) -> str:
        """The cache key of a component's base: the files of its folder, the tools and the sources' lock."""
        with self._guard:
            if component not in self._base_keys:
                self._base_keys[component] = digest_text("base", self.inputs, digest_files(self.tree / "base" / component))
            return self._base_keys[component]

    def base(self, component: str) -> tuple[str, str]:
        """(CRDs, other objects) of a component's base, read or built once per run, when first needed."""
        key = self.base_key(component)
        with self._guard:
            lock = self._locks.setdefault(component, threading.Lock())
        with lock:
            if component not in self._bases:
                folder = self.tree / "base" / component
                text, _ = self._cached(key, lambda: self.kustomize.build(folder))
                self._bases[component] = split_crds(text)
            return self._bases[component]

    def generated_config(self, component: str) -> list[tuple[str, str]]:
        """The generated ConfigMaps and Secrets of a component's base (see _generated_config), kept in a
        cache entry of their own: a warm build decides how to build an overlay without reading the base."""
        text, _ = self._cached(self.base_key(component) + "-generated",
                               lambda: json.dumps(_generated_config(self.base(component)[1])))
        return [(str(kind), str(name)) for kind, name in json.loads(text)]

    def base_tree(self) -> str:
        """The digest of every base folder, taken once per run."""
        with self._guard:
            if self._base_tree is None:
                self._base_tree = digest_files(self.tree / "base")
            return self._base_tree

    def overlay(self, env: str, component: str) -> OverlayOutput:
        """The component's objects in env."""
        folder = self.tree / "overlays" / env / component
        files = read_files(folder)
        outside = _outside_resources(folder, files)
        # The overlay names its base: base/<component>, or base/<component>.<variant> for a cloud variant.
        base = _base_of(files) or component
        if (not (self.tree / "base" / base).is_dir() or outside or _needs_direct_build(files)
                or (_touches_config(files) and _patches_generated(files, self.generated_config(base)))):
            outside = [d for d in outside if d.is_dir()]  # e.g. a folder of SOPS-encrypted Secrets
            key = digest_text("overlay", self.inputs, digest_contents(files, folder.name), self.base_tree(), digest_files(*outside))
            text, cached = self._cached(key, lambda: self.kustomize.build(folder))
            return OverlayOutput(key, ((key, text),) if text else (), cached)
        base_key = self.base_key(base)
        # The entry holds the overlay's own output only; the base's CRDs are joined in front of it.
        key = digest_text("overlay-on-base", self.inputs, base_key, digest_contents(files, folder.name))

        def make() -> str:
            rest = self.base(base)[1]
            with tempfile.TemporaryDirectory(prefix="kfgen-overlay-") as scratch:
                root = Path(scratch)
                target = root / "overlays" / env / component
                shutil.copytree(folder, target)
                if not rest:
                    # A base of CRDs only: the overlay keeps just its own resources, if it has any.
                    kustomization: Manifest = load_plain((target / "kustomization.yaml").read_text(encoding="utf-8"))
                    kustomization["resources"] = [r for r in kustomization.get("resources") or []
                                                  if r != f"../../../base/{base}"]
                    if not kustomization["resources"]:
                        return ""
                    (target / "kustomization.yaml").write_text(dump(kustomization), encoding="utf-8")
                else:
                    (root / "base" / base).mkdir(parents=True)
                    (root / "base" / base / "objects.yaml").write_text(rest, encoding="utf-8")
                    (root / "base" / base / "kustomization.yaml").write_text("resources:\n- objects.yaml\n", encoding="utf-8")
                return self.kustomize.build(target)

        def crds() -> str:  # read only if asked for: the JSON of the CRDs is usually in the cache
            return self.base(base)[0]

        own, cached = self._cached(key, make)
        return OverlayOutput(key, ((base_key + _CRD_PART, crds), (key, own)), cached)


@dataclass(frozen=True)
class OverlayOutput:
    """A component's built objects in one environment, as the YAML parts they were built in."""

    key: str  # the build cache key that identifies the whole output
    # (cache key, YAML text or what reads it): a base's CRDs, then the overlay's own objects
    parts: tuple[tuple[str, str | Callable[[], str]], ...]
    cached: bool  # whether the overlay came from the cache

    @property
    def text(self) -> str:
        return _join(*(_read(text) for _, text in self.parts))


def _needs_direct_build(files: list[tuple[str, bytes]]) -> bool:
    """Overlays that patch CRDs or merge into upstream generators cannot be built on a prebuilt base (nor
    can those with resources outside it: see _outside_resources). files: the overlay folder's files, as
    read_files gives them."""
    text = dict(files).get("kustomization.yaml", b"").decode("utf-8")
    return any(word in text for word in ("CustomResourceDefinition", "configMapGenerator", "secretGenerator"))


def _touches_config(files: list[tuple[str, bytes]]) -> bool:
    """Whether the overlay may patch a ConfigMap or Secret (or select one in a replacement)."""
    text = dict(files).get("kustomization.yaml", b"").decode("utf-8")
    if any(word in text for word in ("kind: ConfigMap", "kind: Secret", "replacements:")):
        return True
    return any(re.search(rb"^kind: (ConfigMap|Secret)$", data, re.MULTILINE)
               for name, data in files if "/" not in name and name.endswith(".yaml") and name != "kustomization.yaml")


# kustomize's name hash: ten characters of a sha256 in hex, with 0, 1, 3, a and e spelt g, h, k, m and t.
_HASH_SUFFIXED = re.compile(r"^(?P<name>.+)-[2-9bcdfghkmt]{10}$")


def _generated_config(objects: str) -> list[tuple[str, str]]:
    """(kind, name before the hash) of each ConfigMap and Secret of a base that a generator named with a hash."""
    found = []
    for kind in ("ConfigMap", "Secret"):
        for obj in load_kind(objects, kind):
            hashed = _HASH_SUFFIXED.match(str((obj.get("metadata") or {}).get("name", "")))
            if hashed:
                found.append((kind, hashed["name"]))
    return found


def _patches_generated(files: list[tuple[str, bytes]], generated: list[tuple[str, str]]) -> bool:
    """Whether a patch or replacement of the overlay may select a generated ConfigMap or Secret of its base.
    A prebuilt base knows such an object only by its hashed name, so a patch would miss it (or leave
    references to the old hash); kustomize selects objects by their name before the hash."""
    if not generated:
        return False
    kustomization: Manifest = load_plain(dict(files).get("kustomization.yaml", b"").decode("utf-8")) or {}
    contents = dict(files)
    selectors: list[Manifest] = []
    for patch in kustomization.get("patches") or []:
        target = patch.get("target")
        if target is None:  # a strategic merge patch names its object itself
            document: Manifest = load_plain(contents.get(patch.get("path", ""), b"").decode("utf-8")) or {}
            target = {"kind": document.get("kind"), "name": (document.get("metadata") or {}).get("name")}
        selectors.append(target)
    for replacement in kustomization.get("replacements") or []:
        selectors.append(replacement.get("source") or {})
        selectors.extend(target.get("select") or {} for target in replacement.get("targets") or [])
    # kustomize anchors a selector's kind and name regular expressions at both ends; a missing one matches all
    return any((selector.get("kind") is None or re.fullmatch(str(selector["kind"]), kind))
               and (selector.get("name") is None or re.fullmatch(str(selector["name"]), name))
               for selector in selectors for kind, name in generated)


_BASE_REFERENCE = re.compile(r"^\.\./\.\./\.\./base/([^/]+)$")


def _base_of(files: list[tuple[str, bytes]]) -> str | None:
    """The folder below base/ an overlay builds on, if it names one."""
    kustomization: Manifest = load_plain(dict(files).get("kustomization.yaml", b"").decode("utf-8")) or {}
    found = (_BASE_REFERENCE.match(r) for r in kustomization.get("resources") or [])
    return next((m.group(1) for m in found if m), None)


def _outside_resources(folder: Path, files: list[tuple[str, bytes]]) -> list[Path]:
    """Resource and kustomize Component folders an overlay names besides its base (they live elsewhere in
    the project: SOPS folders, the user's customizations)."""
    kustomization: Manifest = load_plain(dict(files).get("kustomization.yaml", b"").decode("utf-8")) or {}
    named = [*(kustomization.get("resources") or []), *(kustomization.get("components") or [])]
    return [(folder / r).resolve() for r in named if r.startswith("../") and not _BASE_REFERENCE.match(r)]


def _weight(planned: PlannedComponent) -> int:
    return max((len(release.crds) for release in planned.component.releases.values()), default=0)


def build_environment(
    project_root: Path,
    env_plan: EnvironmentPlan,
    jobs: int | None = None,
    progress: Callable[[str, int, int, float], None] | None = None,
    tree: Path | None = None,
    cache: BuildCache | None = None,
    builder: Builder | None = None,
) -> EnvironmentBuild:
    """Build every component overlay of one environment; results in dependency order.

    The overlays are read from tree (see build_tree), the project itself by default. Pass one
    builder to several calls to share base builds between environments."""
    tree = tree or project_root
    if not (tree / "overlays" / env_plan.name / "kustomization.yaml").is_file():
        raise InputError(f"overlays/{env_plan.name} is not rendered: run `kfgen render` first")
    builder = builder or Builder(project_root, tree, cache)
    started = time.perf_counter()
    done = 0
    count_lock = threading.Lock()

    def one(planned: PlannedComponent) -> ComponentBuild:
        nonlocal done
        begin = time.perf_counter()
        output = builder.overlay(env_plan.name, planned.name)
        build = ComponentBuild(planned.name, planned.wave, lambda: output.text, time.perf_counter() - begin, output.cached, output.key,
                               builder.json_lines(output))
        with count_lock:
            done += 1
            if progress:
                progress(planned.name, done, len(env_plan.components), time.perf_counter() - started)
        return build

    # Components with many CRDs take longest to build: starting them first keeps every worker busy
    # to the end. Results are put back in plan order.
    heaviest_first = sorted(env_plan.components, key=lambda p: -_weight(p))
    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 2) as pool:
        done_builds = dict(zip([p.name for p in heaviest_first], pool.map(one, heaviest_first), strict=True))
    results = [done_builds[p.name] for p in env_plan.components]
    return EnvironmentBuild(env_plan.name, tuple(results), time.perf_counter() - started)


def write_build(build: EnvironmentBuild, out: Path) -> list[Path]:
    """One file of objects per component, numbered in dependency order, plus summary.txt."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    width = len(str(len(build.components)))
    for index, component in enumerate(build.components, start=1):
        path = out / f"{index:0{width}d}-{component.name}.yaml"
        path.write_text(component.text, encoding="utf-8")
        written.append(path)
    summary = out / "summary.txt"
    summary.write_text(format_summary(build), encoding="utf-8")
    written.append(summary)
    return written


def format_summary(build: EnvironmentBuild) -> str:
    lines = [f"environment {build.environment}: {len(build.objects)} objects from {len(build.components)} components "
             f"in {build.seconds:.1f}s", f"{'wave':>4}  {'component':<28} {'objects':>7}"]
    for component in build.components:
        lines.append(f"{component.wave:>4}  {component.name:<28} {len(component.objects):>7}")
    return "\n".join(lines) + "\n"


def write_hydrated(build: EnvironmentBuild, rendered_root: Path, source: str) -> Path:
    """rendered/<env>/<component>/manifests.yaml for the rendered-manifests pattern, replaced whole."""
    target = rendered_root / build.environment
    rendered_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{build.environment}-", dir=rendered_root))
    try:
        for component in build.components:
            folder = staging / component.name
            folder.mkdir()
            head = f"# Generated by kfgen hydrate from {source} (component {component.name}). Do not edit.\n"
            (folder / "manifests.yaml").write_text(head + component.text, encoding="utf-8")
        old = target.with_name(f".{build.environment}.old")
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
