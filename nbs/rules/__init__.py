"""Rule kinds: small, registered, vectorised polars expressions that cutoff files name."""

from nbs.rules.registry import CriterionExprs, Kind, KindContext, KindRegistry, RuleKind

__all__ = ["CriterionExprs", "Kind", "KindContext", "KindRegistry", "RuleKind"]
