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

cah = ConditionPlugin(
    code="CAH",
    name="Congenital adrenal hyperplasia",
    version="1.0",
    description="17-OHP by gestation/weight stratum (above_by_stratum), optional LC-MS/MS ratio.",
)

mcad = ConditionPlugin(
    code="MCAD",
    name="MCAD deficiency",
    version="1.0",
    description="C8 with C8/C10 or C8/C2 (above, any_of, ratio_above).",
)

cf = ConditionPlugin(
    code="CF",
    name="Cystic fibrosis",
    version="1.0",
    description="IRT, then PAP as required second tier; only with parental consent.",
)

sma = ConditionPlugin(
    code="SMA",
    name="Spinal muscular atrophy",
    version="1.0",
    description="SMN1 exon 7 absent with a valid reference gene (absent, reference_gene).",
)
