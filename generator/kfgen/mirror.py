"""Image references through an environment's registry mirror, wherever upstream keeps them.

Containers' `image` fields are kustomize's `images:` business (render.py). Everything else the catalog
names per release as image places (catalog.ImagePlace): environment variables, arguments, ConfigMap
values holding YAML, JSON or plain text, fields of custom resources. For each, the upstream file that
defines the value is read from the sources the build uses (vendor/, then the source caches), and the
overlay gets a JSON patch that tests upstream's exact value and then replaces it with the mirrored one:
a release that changes the value fails the build instead of being patched blindly.

The upstream texts are read before rendering (`read_upstream`) and handed to it, so a render stays a
function of its inputs; their digest joins the render cache's key (rendercache.py).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .catalog import CodeImage, Component, ImagePlace, Release
from .errors import SourceError
from .notebooks import changes_spawner
from .yamlio import load_kind, load_plain

if TYPE_CHECKING:
    from .plan import Plan

# An image reference: [registry[:port]/]path[:tag][@sha256:digest]. In free text, only what has a path of
# at least two parts and a tag or a digest counts: `app.kubernetes.io/name` or `host:8080` are no images.
_NAME = r"(?:[a-z0-9][a-z0-9.-]*(?::[0-9]+)?/)?[a-z0-9][a-z0-9._-]*(?:/[a-z0-9][a-z0-9._-]*)*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"sha256:[0-9a-f]{64}"
REFERENCE = re.compile(rf"^(?P<name>{_NAME})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$")
_TOKEN_SPLIT = re.compile(r"[\s=,\"'`()\[\]{}<>;|]+")
_REGISTRY_HOST = re.compile(r"^[^/]*[.:][^/]*/|^localhost/")


def mirror_image(image: str, mirror: str) -> str:
    """The name of image in the mirror: the registry host is replaced, the repository path kept."""
    path = _REGISTRY_HOST.sub("", image, count=1)
    if "/" not in path:
        path = f"library/{path}"
    return f"{mirror}/{path}"


@dataclass(frozen=True)
class ImageRef:
    name: str
    tag: str | None
    digest: str | None

    def __str__(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    @property
    def source(self) -> str:
        """name:tag, as the image lock keys it."""
        return self.name + (f":{self.tag}" if self.tag else "")


def parse_reference(text: str) -> ImageRef | None:
    if "://" in text:
        return None
    match = REFERENCE.match(text)
    if not match:
        return None
    return ImageRef(match["name"], match["tag"], match["digest"])


def references_in(text: str) -> list[str]:
    """The image references in a free text (a ConfigMap value, an argument), in order of appearance."""
    found: list[str] = []
    for token in _TOKEN_SPLIT.split(text):
        token = token.strip(".:")
        ref = parse_reference(token)
        if ref and "/" in ref.name and (ref.tag or ref.digest) and token not in found:
            found.append(token)
    return found


def rewrite(reference: str, mirror: str, pins: dict[str, str]) -> str:
    """reference in the mirror, with its digest from the image lock when it has one."""
    ref = parse_reference(reference)
    if ref is None:
        raise ValueError(f"not an image reference: {reference!r}")
    digest = ref.digest or pins.get(ref.source)
    return str(ImageRef(mirror_image(ref.name, mirror), ref.tag, digest))


def rewrite_text(text: str, mirror: str, pins: dict[str, str]) -> str:
    """Every image reference in text, whole tokens only, through the mirror."""
    references = references_in(text)
    if not references:
        return text
    pattern = re.compile(r"(?<![\w./@:-])(" + "|".join(re.escape(r) for r in sorted(references, key=len, reverse=True))
                         + r")(?![\w/@-]|[.:][\w])")
    return pattern.sub(lambda m: rewrite(m.group(1), mirror, pins), text)


def image_entries(name: str, mirror: str, pins: dict[str, str]) -> list[dict[str, str]]:
    """kustomize `images` entries that move a container image into the mirror: one per tag the image lock
    pins (kustomize matches `name:tag` too), else one for every tag of the name."""
    pinned = sorted((source, digest) for source, digest in pins.items()
                    if (ref := parse_reference(source)) is not None and ref.name == name)
    if not pinned:
        return [{"name": name, "newName": mirror_image(name, mirror)}]
    return [{"name": source, "newName": mirror_image(name, mirror), "digest": digest} for source, digest in pinned]


@dataclass(frozen=True)
class MirrorInputs:
    """What rendering needs beyond the plan to mirror image places (and to change the notebook spawner's
    configuration, one of them): upstream's files, by (repo, ref, path), and the image lock's digests by name:tag."""

    files: dict[tuple[str, str, str], str] = field(default_factory=dict)
    pins: dict[str, str] = field(default_factory=dict)
    # mirror_patches' results by (component, release, mirror): environments that share a mirror share them
    patches: dict[tuple[str, str, str], list[tuple[str, Any, dict[str, str]]]] = field(
        default_factory=dict, compare=False, repr=False)

    def digest(self) -> str:
        content = json.dumps({"files": sorted([list(k), v] for k, v in self.files.items()), "pins": self.pins}, sort_keys=True)
        return hashlib.sha256(content.encode()).hexdigest()


def default_caches() -> list[Path]:
    configured = os.environ.get("KFGEN_SOURCE_CACHE", "")
    return [Path(d) for d in configured.split(os.pathsep) if d]


def read_upstream(releases: list[Release], directories: list[Path]) -> dict[tuple[str, str, str], str]:
    """The upstream files the image places of these releases name, read from the first directory that has them."""
    files: dict[tuple[str, str, str], str] = {}
    for release in releases:
        wanted = [p.file for p in release.image_places] + [f for c in release.code_images for f in (c.file, c.tag_file)]
        for file in wanted:
            key = (release.repo, release.ref, file)
            if key in files:
                continue
            for directory in directories:
                candidate = directory / release.repo / release.ref / file
                if candidate.is_file():
                    files[key] = candidate.read_text(encoding="utf-8")
                    break
            else:
                searched = ", ".join(str(d) for d in directories)
                raise SourceError(f"{release.repo}/{file} at {release.ref} is in no source (searched: {searched})")
    return files


def _pointer(*parts: str | int) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


@functools.lru_cache(maxsize=64)
def _documents(text: str, kind: str) -> tuple[dict[str, Any], ...]:
    """Upstream's objects of one kind, parsed once: many places of a release share a file of thousands of lines,
    mostly other kinds. Read only."""
    return tuple(load_kind(text, kind))


def _find_object(text: str, place: ImagePlace, where: str) -> dict[str, Any]:
    """The object of the place's kind and name in upstream's file; there, a kustomization's namePrefix may
    still be missing from its name."""
    objects = _documents(text, place.kind)
    named = [d for d in objects if (d.get("metadata") or {}).get("name") == place.name]
    if not named:
        named = [d for d in objects if place.name.endswith("-" + str((d.get("metadata") or {}).get("name")))]
    if len(named) != 1:
        raise SourceError(f"{where}: no single {place.kind} {place.name} in upstream's {place.file}")
    return named[0]


def _pod_spec_path(obj: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    if obj.get("kind") == "CronJob":
        return ["spec", "jobTemplate", "spec", "template", "spec"], obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return ["spec", "template", "spec"], obj["spec"]["template"]["spec"]


def _value_at(obj: Any, pointer: str, where: str) -> Any:
    for part in pointer.split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        try:
            obj = obj[int(part)] if isinstance(obj, list) else obj[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise SourceError(f"{where}: upstream has nothing at {pointer}") from None
    return obj


def _config_value(text: str, place: ImagePlace, where: str) -> str:
    key = place.key or ""
    if place.source == "file":
        return text
    if place.source == "envFile":
        lines = [line.split("=", 1)[1] for line in text.splitlines() if line.split("=", 1)[0].strip() == key and "=" in line]
    elif place.source == "literal":
        generators = (load_plain(text) or {}).get("configMapGenerator") or []
        lines = [literal.split("=", 1)[1] for g in generators if g.get("name") == place.name
                 for literal in g.get("literals") or [] if literal.split("=", 1)[0] == key]
    else:
        data = _find_object(text, place, where).get("data") or {}
        lines = [data[key]] if key in data else []
    if len(lines) != 1:
        raise SourceError(f"{where}: upstream's {place.file} has {len(lines)} values for {place.name} key {key}")
    return str(lines[0])


def place_operations(place: ImagePlace, text: str, mirror: str, pins: dict[str, str], where: str) -> list[dict[str, Any]]:
    """The JSON patch that moves one place's image references into the mirror, testing upstream's values first."""
    found: list[tuple[str, str]] = []  # (pointer, upstream value)
    if place.key is not None:
        found.append((_pointer("data", place.key), _config_value(text, place, where)))
    elif place.path is not None:
        found.append((place.path, str(_value_at(_find_object(text, place, where), place.path, where))))
    else:
        obj = _find_object(text, place, where)
        prefix, pod = _pod_spec_path(obj)
        for index, container in enumerate(pod.get("containers") or []):
            if place.container and container.get("name") != place.container:
                continue
            if place.env is not None:
                found.extend((_pointer(*prefix, "containers", index, "env", at, "value"), str(var.get("value")))
                             for at, var in enumerate(container.get("env") or []) if var.get("name") == place.env)
            else:
                args = [str(arg) for arg in container.get("args") or []]
                # --flag=IMAGE, or --flag followed by IMAGE
                found.extend((_pointer(*prefix, "containers", index, "args", at), arg)
                             for at, arg in enumerate(args) if arg.startswith(f"{place.arg}="))
                found.extend((_pointer(*prefix, "containers", index, "args", at + 1), args[at + 1])
                             for at, arg in enumerate(args[:-1]) if arg == place.arg)
            if found:
                break
    if not found:
        raise SourceError(f"{where}: upstream's {place.file} has no {place.env or place.arg} in {place.kind} {place.name}")
    operations: list[dict[str, Any]] = []
    for pointer, value in found:
        rewritten = rewrite_text(value, mirror, pins)
        if rewritten == value:
            raise SourceError(f"{where}: upstream's {place.kind} {place.name} holds no image reference at {pointer}")
        if place.format == "yaml":
            load_plain(rewritten)
        elif place.format == "json":
            json.loads(rewritten)
        operations.append({"op": "test", "path": pointer, "value": value})
        operations.append({"op": "replace", "path": pointer, "value": rewritten})
    return operations


def mirror_patches(component: Component, release_name: str, mirror: str,
                   inputs: MirrorInputs) -> list[tuple[str, Any, dict[str, str]]]:
    """(file name, patch, target) per object of the component with image places: a JSON patch that tests
    upstream's values, or for environment variables a strategic merge patch. The caller's own copy."""
    key = (component.name, release_name, mirror)
    if key not in inputs.patches:
        inputs.patches[key] = _mirror_patches(component, release_name, mirror, inputs)
    return copy.deepcopy(inputs.patches[key])


def _mirror_patches(component: Component, release_name: str, mirror: str,
                    inputs: MirrorInputs) -> list[tuple[str, Any, dict[str, str]]]:
    release = component.releases[release_name]
    by_object: dict[tuple[str, str], list[dict[str, Any]]] = {}
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for index, place in enumerate(release.image_places):
        where = f"{component.file}: releases.{release_name}.imagePlaces[{index}]"
        text = inputs.files.get((release.repo, release.ref, place.file))
        if text is None:
            raise SourceError(f"{where}: upstream's {place.file} was not read")
        if place.env is not None:
            _merge_env(merged.setdefault((place.kind, place.name), {}), place, text, mirror, inputs.pins, where)
        else:
            by_object.setdefault((place.kind, place.name), []).extend(place_operations(place, text, mirror, inputs.pins, where))
    for index, code in enumerate(release.code_images):
        where = f"{component.file}: releases.{release_name}.codeImages[{index}]"
        texts = [inputs.files.get((release.repo, release.ref, f)) for f in (code.file, code.tag_file)]
        if texts[0] is None or texts[1] is None:
            raise SourceError(f"{where}: upstream's {code.file} or {code.tag_file} was not read")
        _merge_code_image(merged.setdefault((code.kind, code.name), {}), code, texts[0], texts[1], mirror, inputs.pins, where)
    patches: list[tuple[str, Any, dict[str, str]]] = [
        (f"mirror-{kind.lower()}-{name}.yaml", operations, {"kind": kind, "name": f"^{name}$"})
        for (kind, name), operations in sorted(by_object.items())]
    patches.extend((f"mirror-env-{kind.lower()}-{name}.yaml", patch, {"kind": kind, "name": f"^{name}$"})
                   for (kind, name), patch in sorted(merged.items()))
    return patches


def code_image_tag(code: CodeImage, tag_text: str, where: str) -> str:
    """The tag the controller's code gives its image when tag_env is unset, from upstream's ConfigMap."""
    place = ImagePlace(kind="ConfigMap", name=code.tag_config, file=code.tag_file, source="manifest", key=code.tag_key)
    return _config_value(tag_text, place, where)


def _merge_code_image(patch: dict[str, Any], code: CodeImage, workload_text: str, tag_text: str, mirror: str,
                      pins: dict[str, str], where: str) -> None:
    """The controller's variables that name an image its code starts: the mirrored name, and the tag, with the
    image lock's digest after it when it pins one (the code writes name:tag, and name:tag@digest pulls by digest).
    Upstream's workload must set neither, or its value would be the one to test and replace."""
    obj = _find_object(workload_text, ImagePlace(kind=code.kind, name=code.name, file=code.file, source="manifest"), where)
    prefix, pod = _pod_spec_path(obj)
    container = next((c for c in pod.get("containers") or [] if c.get("name") == code.container), None)
    if container is None:
        raise SourceError(f"{where}: upstream's {code.kind} {code.name} has no container {code.container}")
    already = sorted({v.get("name") for v in container.get("env") or []} & {code.name_env, code.tag_env})
    if already:
        raise SourceError(f"{where}: upstream's {code.kind} {code.name} now sets {', '.join(already)}; "
                          "name this image as an image place instead")
    tag = code_image_tag(code, tag_text, where)
    digest = pins.get(f"{code.image}:{tag}")
    _env_entry(patch, obj, prefix, code.kind, code.name, code.container).extend([
        {"name": code.name_env, "value": mirror_image(code.image, mirror)},
        {"name": code.tag_env, "value": tag + (f"@{digest}" if digest else "")}])


def _env_entry(patch: dict[str, Any], obj: dict[str, Any], prefix: list[str], kind: str, name: str,
               container: str) -> list[dict[str, Any]]:
    """The env list of container in a strategic merge patch of the workload, made on first use."""
    if not patch:
        patch.update({"apiVersion": obj["apiVersion"], "kind": kind, "metadata": {"name": name}})
    spec = patch
    for part in prefix:
        spec = spec.setdefault(part, {})
    containers = spec.setdefault("containers", [])
    entry = next((c for c in containers if c["name"] == container), None)
    if entry is None:
        entry = {"name": container, "env": []}
        containers.append(entry)
    env: list[dict[str, Any]] = entry["env"]
    return env


def _merge_env(patch: dict[str, Any], place: ImagePlace, text: str, mirror: str, pins: dict[str, str], where: str) -> None:
    """An environment variable through the mirror, as a strategic merge by container and variable name: upstream's
    overlays add variables before it, so its position in the built list is not the one in upstream's file."""
    obj = _find_object(text, place, where)
    prefix, pod = _pod_spec_path(obj)
    for container in pod.get("containers") or []:
        if place.container and container.get("name") != place.container:
            continue
        values = [str(var.get("value")) for var in container.get("env") or [] if var.get("name") == place.env]
        if values:
            rewritten = rewrite_text(values[0], mirror, pins)
            if rewritten == values[0]:
                raise SourceError(f"{where}: upstream's {place.env} holds no image reference")
            _env_entry(patch, obj, prefix, place.kind, place.name, container["name"]).append(
                {"name": place.env, "value": rewritten})
            return
    raise SourceError(f"{where}: upstream's {place.file} has no {place.env} in {place.kind} {place.name}")


IMAGE_LOCK = "images.lock.json"


def load_image_lock(path: Path) -> dict[str, str]:
    """The image lock's digests by source name:tag; empty when there is no lock.

    Its format: {"images": {"<name>:<tag>": "sha256:<64 hex>", ...}}, one entry per image an environment
    pulls, as `kfgen images` lists them, made where the registry is reachable (from `skopeo inspect`).
    """
    from .errors import InputError

    if not path.is_file():
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(f"{path.name}: not a readable JSON file: {error}") from None
    images = document.get("images") if isinstance(document, dict) else None
    if not isinstance(images, dict):
        raise InputError(f"{path.name}: expected an object with an `images` object of name:tag to digest")
    pins: dict[str, str] = {}
    for source, digest in sorted(images.items()):
        ref = parse_reference(source) if isinstance(source, str) else None
        if ref is None or ref.digest or not isinstance(digest, str) or not re.fullmatch(_DIGEST, digest):
            raise InputError(f"{path.name}: images.{source}: expected name:tag mapped to sha256:<64 hex digits>")
        pins[source] = digest
    return pins


def read_inputs(plan: Plan, project_root: Path | None, caches: list[Path] | None) -> MirrorInputs:
    """What the plan's mirrored environments need, upstream's files for their image places and the image lock;
    and the files of the places whose value other settings change (the notebook spawner's configuration)."""
    release = plan.platform.kubeflow_version
    needed = {p.name: p.component.releases[release] for e in plan.environments for p in e.components
              if e.environment.registry_mirror or changes_spawner(p.name, p.config.settings, p.component.defaults())}
    if not needed:
        return MirrorInputs()
    directories = ([project_root / "vendor"] if project_root else []) + (default_caches() if caches is None else caches)
    mirrored = any(e.environment.registry_mirror for e in plan.environments)
    pins = load_image_lock(project_root / IMAGE_LOCK) if project_root and mirrored else {}
    return MirrorInputs(read_upstream([r for _, r in sorted(needed.items())], directories), pins)
