"""Typed, frozen model of a cutoff set file.

Criteria stay as plain mappings here (``kind`` plus the kind's parameters): which kinds
exist is decided by the rule-kind registry, which checks each criterion's parameters when
the set is loaded (:func:`cutoffs.load.load_cutoff_sets`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: The tiers a criterion can reach, in order. Index + 1 is the tier's level number.
LEVELS: tuple[str, ...] = ("retest", "repeat_specimen", "referral")

Urgency = Literal["urgent", "routine"]


class _Frozen(BaseModel):
    # an infinite or NaN number is a typing error in a cutoff file, never a setting
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class TierLimits(_Frozen):
    """Limits of one criterion per tier; a missing lower tier takes the next one up."""

    retest: float | None = None
    repeat_specimen: float | None = None
    referral: float | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> TierLimits:
        if self.retest is None and self.repeat_specimen is None and self.referral is None:
            raise ValueError("a criterion needs at least one of retest, repeat_specimen, referral")
        return self

    def resolved(self) -> tuple[float, float, float]:
        """(retest, repeat_specimen, referral) with missing tiers filled in.

        A missing lower tier takes the next one up (no separate retest band: the repeat
        limit triggers the retest); a missing referral takes the highest tier given.
        """
        referral = self.referral
        if referral is None:
            referral = self.repeat_specimen if self.repeat_specimen is not None else self.retest
        repeat = self.repeat_specimen if self.repeat_specimen is not None else referral
        retest = self.retest if self.retest is not None else repeat
        assert retest is not None and repeat is not None and referral is not None
        return retest, repeat, referral


class SpecimenRule(_Frozen):
    """A specimen-level rule that requests a repeat card."""

    urgency: Urgency = "routine"
    first_card_only: bool = False


class EarlyCollectionRule(SpecimenRule):
    """Cards collected before ``min_age_hours`` of life."""

    min_age_hours: float = Field(gt=0, le=168)


class PretermRule(SpecimenRule):
    """Cards of babies born before ``below_weeks`` completed weeks."""

    below_weeks: int = Field(ge=20, le=42)


class SpecimenRules(_Frozen):
    """All specimen-level rules of a set; a rule left out is not applied."""

    unsatisfactory: SpecimenRule | None = SpecimenRule()
    early_collection: EarlyCollectionRule | None = None
    transfusion: SpecimenRule | None = None
    preterm: PretermRule | None = None


class ReplicatePolicy(_Frozen):
    """How a call is made once the retest punches of a card are in."""

    retests_needed: int = Field(default=2, ge=1, le=5)
    method: Literal["mean_of_retests", "k_of_n"] = "mean_of_retests"
    k: int = Field(default=2, ge=1, le=6)


class NotAssessable(_Frozen):
    """When a card cannot be judged for the condition (e.g. SCID before 32 weeks)."""

    below_postmenstrual_weeks: float = Field(gt=20, le=45)
    reason: str


class SecondTier(_Frozen):
    """A further test on the same card that decides once the first tier is positive.

    From ``from_tier`` on, the second tier's criteria decide the call (referral tier ->
    ``referral``; repeat tier -> ``repeat_specimen``; below -> ``negative``). Without the
    second-tier result the call asks the laboratory for it (``retest``) when ``required``,
    else the first-tier call stands.
    """

    name: str
    markers: tuple[str, ...] = Field(min_length=1)
    criteria: tuple[dict[str, Any], ...] = Field(min_length=1)
    from_tier: Literal["repeat_specimen", "referral"] = "repeat_specimen"
    required: bool = False
    #: a first tier at referral skips the second tier (failsafe, e.g. very high IRT)
    failsafe_at_referral: bool = False
    sources: tuple[str, ...] = Field(min_length=1)


def _default_urgency() -> dict[Literal["repeat_specimen", "referral"], Urgency]:
    return {"repeat_specimen": "routine", "referral": "urgent"}


class ConditionCutoffs(_Frozen):
    """The rule of one condition: markers needed, criteria (ANDed), urgency per tier."""

    name: str
    markers: tuple[str, ...] = Field(min_length=1)
    criteria: tuple[dict[str, Any], ...] = Field(min_length=1)
    urgency: dict[Literal["repeat_specimen", "referral"], Urgency] = Field(
        default_factory=_default_urgency
    )
    replicates: ReplicatePolicy | None = None
    #: card fields that must be true for the condition to be screened (e.g. consent_cf)
    requires_true: tuple[Literal["consent_cf"], ...] = ()
    not_assessable: NotAssessable | None = None
    second_tier: SecondTier | None = None
    #: markers shown in the reason when present, not used for the call (e.g. SMN2 copies)
    report_markers: tuple[str, ...] = ()
    sources: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _criteria_named(self) -> ConditionCutoffs:
        for crit in self.criteria:
            if "kind" not in crit:
                raise ValueError(f"criterion {crit} has no 'kind'")
        return self


class CutoffSet(_Frozen):
    """One versioned cutoff set, in force from ``effective_from`` (collection date)."""

    version: str = Field(min_length=1)
    effective_from: dt.date
    title: str
    status: str = ""
    specimen_rules: SpecimenRules = SpecimenRules()
    replicates: ReplicatePolicy = ReplicatePolicy()
    conditions: dict[str, ConditionCutoffs]

    def replicate_policy(self, condition: str) -> ReplicatePolicy:
        """The condition's own replicate policy, else the set's."""
        return self.conditions[condition].replicates or self.replicates
