"""SCID, added to the Luxembourg panel on 2026-01-01, as a plug-in.

It is registered like any third-party condition (entry point ``nbs.conditions``); the cutoff
set LNS-2026.1 gives its limits, and cards collected before 2026-01-01 are judged by
LNS-2024.1, which has no SCID rule.
"""

from nbs.conditions import ConditionPlugin

scid = ConditionPlugin(
    code="SCID",
    name="Severe combined immunodeficiency",
    version="1.0",
    description="TREC below limits with a valid reference gene; not assessable < 32 weeks PMA.",
)
