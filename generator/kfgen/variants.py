"""Cloud variants: which upstream alternative of a component each environment builds.

A release of a component may list variants (catalog `variants`), each for clusters of some providers:
upstream's Istio for GKE, whose nodes mount /opt/cni/bin read-only, for one. An environment gets the
first variant listing its cluster's provider, else the release itself. Each variant in use has a base
of its own, `base/<component>.<variant>` (a dot never occurs in a component name); environments on
the release itself keep `base/<component>`, so adding a variant changes nothing for them.
"""

from __future__ import annotations

from .catalog import Component, Release, Variant


def chosen_variant(component: Component, release: str, provider: str) -> Variant | None:
    """The variant of component an environment on provider builds, or None for the release itself."""
    return component.releases[release].variant_for(provider)


def base_name(component: Component, variant: Variant | None) -> str:
    """The folder below base/ that an environment of this variant builds on."""
    return component.name if variant is None else f"{component.name}.{variant.name}"


def variant_source(component: Component, release: str, variant: Variant | None) -> Release:
    """The release as the variant builds it: its paths and components in place of the release's."""
    return component.releases[release].with_variant(variant)
