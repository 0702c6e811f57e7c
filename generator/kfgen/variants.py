"""Variants: which upstream alternative of a component each environment builds.

A release of a component may list variants (catalog `variants`), each for clusters of some providers
(upstream's Istio for GKE, whose nodes mount /opt/cni/bin read-only), or for settings that its `when`
holds for (the model registry's PostgreSQL overlay). An environment gets the first variant whose
providers list its cluster's provider and whose `when` is true, else the release itself. Each variant
in use has a base of its own, `base/<component>.<variant>` (a dot never occurs in a component name);
environments on the release itself keep `base/<component>`, so adding a variant changes nothing for them.
"""

from __future__ import annotations

from typing import Any

from .catalog import Component, Release, Variant


def chosen_variant(component: Component, release: str, provider: str, settings: dict[str, Any]) -> Variant | None:
    """The variant of component an environment on provider with these (merged) settings builds, or None for
    the release itself."""
    for index, variant in enumerate(component.releases[release].variants):
        if variant.providers and provider not in variant.providers:
            continue
        if variant.when:
            from .templates import evaluate  # jinja, only for a variant that settings choose

            if not evaluate(variant.when, {"settings": settings}, f"{component.file}: releases.{release}.variants[{index}].when"):
                continue
        return variant
    return None


def missing_settings(component: Component, variant: Variant | None, provider: str,
                     settings: dict[str, Any]) -> list[tuple[str, str]]:
    """(setting, message) for each setting the variant needs that the environment leaves unset (no default)."""
    if variant is None:
        return []
    missing = []
    for setting in variant.required_settings:
        if settings.get(setting) is None:
            described = (component.settings_schema.get("properties") or {}).get(setting, {}).get("description", "")
            first = described.split(". ")[0].rstrip(".")
            missing.append((setting, f"required where cluster.provider is {provider!r} ({component.name}'s "
                                     f"{variant.name!r} variant)" + (f": {first}" if first else "")))
    return missing


def named_variant(component: Component, release: str, name: str | None) -> Variant | None:
    """The variant of that name (as the loaded spec records the choice), or None for the release itself."""
    return next((v for v in component.releases[release].variants if v.name == name), None) if name else None


def base_name(component: Component, variant: Variant | None) -> str:
    """The folder below base/ that an environment of this variant builds on."""
    return component.name if variant is None else f"{component.name}.{variant.name}"


def variant_source(component: Component, release: str, variant: Variant | None) -> Release:
    """The release as the variant builds it: its paths and components in place of the release's."""
    return component.releases[release].with_variant(variant)
