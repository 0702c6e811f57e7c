"""Every image an environment pulls: from its built objects, where the catalog says images are.

Two kinds of places hold them: the `image` of every container (`containers`, `initContainers`,
`ephemeralContainers` lists at any depth, so custom resources' pod templates too, and a `container`
object's) and the catalog's image places (mirror.py), whose values may hold several references in
text. Each image is listed with its source name (for a mirrored environment, the upstream name the
mirror copies; found through the catalog's names and upstream's values at the image places), the
name it is pulled as, and its tag and digest. Formats: one line per image, JSON, or a `skopeo sync`
YAML file keyed by source registry, so that a mirror is filled in one command:
`skopeo sync --src yaml --dest docker images.yaml registry.example.com/mirror`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .mirror import IMAGE_LOCK, MirrorInputs, mirror_image, parse_reference, references_in
from .notebooks import COMPONENT as NOTEBOOKS
from .notebooks import setting_images
from .plan import EnvironmentPlan
from .yamlio import Manifest, dump

if TYPE_CHECKING:
    from .objects import Finding

_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_HASH_SUFFIX = re.compile(r"^-[a-z0-9]{10}$")
_DOCKER_HUB = "docker.io"


@dataclass(frozen=True, order=True)
class PulledImage:
    image: str  # as the cluster pulls it
    source: str  # where the mirror copies it from (the image itself without a mirror)
    name: str  # of image, without tag and digest
    tag: str | None
    digest: str | None

    def as_dict(self) -> dict[str, str | None]:
        return {"image": self.image, "source": self.source, "name": self.name, "tag": self.tag, "digest": self.digest}


def _container_images(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in _CONTAINER_LISTS and isinstance(item, list):
                yield from (str(c["image"]) for c in item if isinstance(c, dict) and isinstance(c.get("image"), str))
            if key == "container" and isinstance(item, dict) and isinstance(item.get("image"), str):
                yield str(item["image"])
            yield from _container_images(item)
    elif isinstance(value, list):
        for item in value:
            yield from _container_images(item)


def _named(objects: list[Manifest], kind: str, name: str) -> list[Manifest]:
    """Objects of kind named name, or name with the hash suffix of a kustomize generator."""
    return [o for o in objects if o.get("kind") == kind and (
        o["metadata"]["name"] == name or (o["metadata"]["name"].startswith(name) and _HASH_SUFFIX.match(o["metadata"]["name"][len(name):])))]


def _place_values(obj: Manifest, env: str | None, arg: str | None, key: str | None, path: str | None) -> list[str]:
    if key is not None:
        return [str((obj.get("data") or {}).get(key, ""))]
    if path is not None:
        value: Any = obj
        for part in path.split("/")[1:]:
            part = part.replace("~1", "/").replace("~0", "~")
            value = value[int(part)] if isinstance(value, list) else (value or {}).get(part)
        return [str(value)] if value is not None else []
    pod = obj["spec"]["jobTemplate"]["spec"]["template"]["spec"] if obj["kind"] == "CronJob" else obj["spec"]["template"]["spec"]
    values: list[str] = []
    for container in pod.get("containers") or []:
        if env is not None:
            values.extend(str(v.get("value")) for v in container.get("env") or [] if v.get("name") == env)
        else:
            args = [str(a) for a in container.get("args") or []]
            values.extend(a for a in args if a.startswith(f"{arg}="))
            values.extend(args[i + 1] for i, a in enumerate(args[:-1]) if a == arg)
    return values


def _code_image_references(workloads: list[Manifest], name_env: str, tag_env: str) -> Iterator[str]:
    """name:tag as a controller's code writes them, where the workload sets both variables (a mirrored
    environment); without them the code pulls upstream's image of that name and tag, which the component's
    own containers pull too."""
    for obj in workloads:
        for container in obj["spec"]["template"]["spec"].get("containers") or []:
            env = {v.get("name"): v.get("value") for v in container.get("env") or []}
            if isinstance(env.get(name_env), str) and isinstance(env.get(tag_env), str):
                yield f"{env[name_env]}:{env[tag_env]}"


def _sources(env_plan: EnvironmentPlan, release: str, mirror: str, inputs: MirrorInputs) -> dict[str, str]:
    """Mirrored name -> source name, from the catalog's images and upstream's values at the image places."""
    names: set[str] = set()
    for planned in env_plan.components:
        rel = planned.source(release)
        names.update(rel.images)
        names.update(str(i.get("newName", i["name"])) for i in planned.config.images)
        names.update(code.image for code in rel.code_images)
        if planned.name == NOTEBOOKS:  # the spawner's images the spec offers, which upstream may not have
            names.update(ref.name for image in setting_images(planned.config.settings) if (ref := parse_reference(image)))
        for place in rel.image_places:
            # Every reference in the file: more names than the place holds, which only widens the candidates.
            for reference in references_in(inputs.files.get((rel.repo, rel.ref, place.file), "")):
                parsed = parse_reference(reference)
                if parsed is not None:
                    names.add(parsed.name)
    return {mirror_image(name, mirror): name for name in sorted(names)}


def environment_images(env_plan: EnvironmentPlan, release: str, objects: list[Manifest],
                       inputs: MirrorInputs | None = None) -> list[PulledImage]:
    """Every image the built objects of one environment pull, sorted by the name they are pulled as."""
    found: set[str] = set(_container_images(objects))
    for planned in env_plan.components:
        for place in planned.component.releases[release].image_places:
            for obj in _named(objects, place.kind, place.name):
                for value in _place_values(obj, place.env, place.arg, place.key, place.path):
                    found.update(references_in(value))
        for code in planned.component.releases[release].code_images:
            found.update(_code_image_references(_named(objects, code.kind, code.name), code.name_env, code.tag_env))
    mirror = env_plan.environment.registry_mirror
    sources = _sources(env_plan, release, mirror, inputs or MirrorInputs()) if mirror else {}
    images = []
    for reference in found:
        ref = parse_reference(reference)
        if ref is None:
            continue
        source_name = sources.get(ref.name, ref.name)
        source = source_name + (f":{ref.tag}" if ref.tag else "") + (f"@{ref.digest}" if ref.digest else "")
        images.append(PulledImage(reference, source, ref.name, ref.tag, ref.digest))
    return sorted(images)


def _registry_and_repository(name: str) -> tuple[str, str]:
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return _DOCKER_HUB, name if "/" in name else f"library/{name}"


def skopeo_sync(images: list[PulledImage]) -> str:
    """A `skopeo sync --src yaml` file: per source registry, each repository with its tags and digests."""
    registries: dict[str, dict[str, set[str]]] = {}
    for image in images:
        ref = parse_reference(image.source)
        if ref is None:
            continue
        registry, repository = _registry_and_repository(ref.name)
        versions = registries.setdefault(registry, {}).setdefault(repository, set())
        versions.add(ref.digest or ref.tag or "latest")
    document = {registry: {"images": {repo: sorted(versions) for repo, versions in sorted(repos.items())}}
                for registry, repos in sorted(registries.items())}
    return dump(document)


def format_images(images: list[PulledImage], form: str) -> str:
    if form == "json":
        return json.dumps([i.as_dict() for i in images], indent=2) + "\n"
    if form == "skopeo":
        return skopeo_sync(images)
    return "".join(f"{i.image}\t{i.source}\n" if i.source != i.image else f"{i.image}\n" for i in images)


def unpinned_findings(env_plan: EnvironmentPlan, release: str, components: list[tuple[str, list[Manifest]]],
                      inputs: MirrorInputs) -> list[Finding]:
    """With an image lock, each image of a mirrored environment that the lock does not pin by digest."""
    from .objects import Finding

    if not inputs.pins or not env_plan.environment.registry_mirror:
        return []
    findings = []
    for component, objects in components:
        for image in environment_images(env_plan, release, objects, inputs):
            if image.digest is None:
                findings.append(Finding(env_plan.name, component, "Image", "", image.image, "",
                                        f"{IMAGE_LOCK} has no digest for {image.source}; add it (skopeo inspect)", "image-lock"))
    return findings
