"""The built-in conditions. They are loaded through the same entry points as any plug-in
(see ``[project.entry-points."nbs.conditions"]`` in pyproject.toml)."""

from nbs.conditions import ConditionPlugin

pku = ConditionPlugin(
    code="PKU",
    name="Phenylketonuria / hyperphenylalaninaemia",
    version="1.0",
    description="Phe with the Phe/Tyr ratio (kinds: above, ratio_above).",
)

ch = ConditionPlugin(
    code="CH",
    name="Congenital hypothyroidism",
    version="1.0",
    description="Whole-blood TSH with limits by age at collection (kind: above_by_age).",
)
