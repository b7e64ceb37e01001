"""Rule kinds: small, registered, vectorised polars expressions that cutoff files name."""

from nbs.rules.registry import CriterionExprs, KindContext, KindRegistry, RuleKind

__all__ = ["CriterionExprs", "KindContext", "KindRegistry", "RuleKind"]
