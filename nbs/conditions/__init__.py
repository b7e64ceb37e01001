"""Screening conditions as plug-ins.

Every condition, built-in or not, arrives through the ``nbs.conditions`` entry point group:
an entry point names a :class:`ConditionPlugin` (or a function returning one). The plug-in
says which condition code it provides and may bring new rule kinds; the limits themselves
live in the cutoff files.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points

from nbs.rules.kinds import builtin_kinds
from nbs.rules.registry import AnyKind, KindRegistry

ENTRY_POINT_GROUP = "nbs.conditions"


@dataclass(frozen=True)
class ConditionPlugin:
    """A screening condition: its code, name, version and any rule kinds it brings (each a
    :class:`~nbs.rules.registry.Kind` subclass, or a ``RuleKind`` record of functions)."""

    code: str
    name: str
    version: str
    kinds: tuple[AnyKind, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class ConditionRegistry:
    """The loaded conditions (by code, in load order) and every rule kind."""

    conditions: Mapping[str, ConditionPlugin]
    kinds: KindRegistry
    sources: Mapping[str, str] = field(default_factory=dict)

    def codes(self) -> tuple[str, ...]:
        """Loaded condition codes."""
        return tuple(self.conditions)


def _resolve(ep: EntryPoint) -> ConditionPlugin:
    obj = ep.load()
    plugin = obj() if callable(obj) and not isinstance(obj, ConditionPlugin) else obj
    if not isinstance(plugin, ConditionPlugin):
        raise TypeError(f"entry point {ep.name} = {ep.value} is not a ConditionPlugin")
    if plugin.code != ep.name:
        raise ValueError(f"entry point {ep.name} provides condition {plugin.code!r}")
    return plugin


def build_registry(plugins: Iterable[tuple[ConditionPlugin, str]]) -> ConditionRegistry:
    """A registry from (plugin, source) pairs; duplicate condition codes or kinds fail."""
    kinds = KindRegistry()
    kinds.register_all(builtin_kinds())
    conditions: dict[str, ConditionPlugin] = {}
    sources: dict[str, str] = {}
    for plugin, source in plugins:
        if plugin.code in conditions:
            raise ValueError(
                f"condition {plugin.code!r} is provided twice ({sources[plugin.code]} and {source})"
            )
        kinds.register_all(plugin.kinds)
        conditions[plugin.code] = plugin
        sources[plugin.code] = source
    return ConditionRegistry(conditions=conditions, kinds=kinds, sources=sources)


def load_registry(group: str = ENTRY_POINT_GROUP) -> ConditionRegistry:
    """Load every installed condition plug-in (built-ins included) from entry points."""
    eps = sorted(entry_points(group=group), key=lambda ep: ep.name)
    return build_registry(
        (_resolve(ep), f"{ep.value} ({ep.dist.name if ep.dist else '?'})") for ep in eps
    )
