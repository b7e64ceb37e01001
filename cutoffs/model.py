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


class TransfusionRule(SpecimenRule):
    """Cards collected after a red-cell transfusion (``transfusion`` true, or
    ``last_transfusion_at`` before collection). A card collected at least
    ``repeat_after_days`` after the last transfusion is valid again: it answers the request."""

    repeat_after_days: float = Field(default=3, gt=0, le=180)


class PretermRule(SpecimenRule):
    """Babies on the preterm / very-low-birth-weight protocol: born before ``below_weeks``
    completed weeks, or (whatever the gestation, recorded or not) weighing less than
    ``below_grams``. A later card answers the request from ``repeat_at_postmenstrual_weeks``
    (gestation + age), or, where the gestation is unknown, from ``repeat_at_age_days``."""

    below_weeks: int = Field(ge=20, le=42)
    below_grams: int | None = Field(default=None, ge=250, le=4000)
    repeat_at_postmenstrual_weeks: float | None = Field(default=None, ge=20, le=45)
    repeat_at_age_days: float = Field(default=28, gt=0, le=120)

    @property
    def answer_weeks(self) -> float:
        """The postmenstrual age (weeks) from which a later card answers."""
        return self.repeat_at_postmenstrual_weeks or float(self.below_weeks)


class TransitRule(_Frozen):
    """Cards received more than ``max_days`` after collection are unsatisfactory
    (``too_old``): the analytes decay in a card kept too long."""

    max_days: float = Field(gt=0, le=60)
    urgency: Urgency = "routine"


class SpecimenRules(_Frozen):
    """All specimen-level rules of a set; a rule left out is not applied."""

    unsatisfactory: SpecimenRule | None = SpecimenRule()
    early_collection: EarlyCollectionRule | None = None
    transfusion: TransfusionRule | None = None
    preterm: PretermRule | None = None
    transit: TransitRule | None = None


Action = Literal["repeat_specimen", "referral"]


class ReplicatePolicy(_Frozen):
    """How a call is made once the retest punches of a card are in.

    Whatever the method, a punch at the referral tier is never outvoted into a negative:
    the call is then at least ``outvoted`` (default: a new card), and at least
    ``punch_error`` when the first punch reached referral and every retest stayed below the
    retest limit (a suspected punch or plate error)."""

    retests_needed: int = Field(default=2, ge=1, le=5)
    method: Literal["mean_of_retests", "k_of_n"] = "mean_of_retests"
    k: int = Field(default=2, ge=1, le=6)
    outvoted: Action = "repeat_specimen"
    punch_error: Action = "repeat_specimen"


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
    failsafe_at_referral: bool = True
    sources: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _failsafe(self) -> SecondTier:
        if not self.failsafe_at_referral:
            raise ValueError(
                "a second tier needs its failsafe: a first tier at the referral limit refers "
                "whatever the second tier says (failsafe_at_referral: true; set the first "
                "tier's referral limits to the very high values that must always refer)"
            )
        return self


class Failsafe(_Frozen):
    """Markers so abnormal on their own that the condition reaches at least ``at_least``
    whatever its other criteria say or lack (e.g. a very high Phe whatever the Phe/Tyr
    ratio, or with no tyrosine result): it fires where all its criteria reach their
    referral limit."""

    at_least: Action = "repeat_specimen"
    criteria: tuple[dict[str, Any], ...] = Field(min_length=1)
    sources: tuple[str, ...] = Field(min_length=1)


class ValidUntilAge(_Frozen):
    """A marker that is not valid beyond an age at collection (e.g. IRT falls after the
    first weeks): older cards get ``not_evaluated`` with ``reason`` and a warning."""

    days: float = Field(gt=0, le=365)
    reason: str


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
    failsafe: tuple[Failsafe, ...] = ()
    valid_until_age: ValidUntilAge | None = None
    #: the borderline call (repeat_specimen) of this many successive cards of a baby
    #: refers (a baby is never sent round a loop of repeat cards); null: never
    borderline_cards_to_refer: int | None = Field(default=2, ge=2, le=5)
    #: the same for cards without a valid result (a DNA failure that persists): the baby
    #: is referred for another kind of sample instead of a further card; null: never
    failed_cards_to_refer: int | None = Field(default=None, ge=2, le=5)
    #: a new card asked for on this many successive cards of a baby, for any reason
    #: (borderline, no valid result, punches that disagree), refers: the cap on repeat cards
    repeat_cards_to_refer: int = Field(default=3, ge=2, le=5)
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
