"""The analyte catalogue: codes, units, aliases, LOINC codes, plausible ranges, conversions."""

from analytes.catalogue import Analyte, Catalogue, Conversion, load_catalogue, unit_key

__all__ = ["Analyte", "Catalogue", "Conversion", "load_catalogue", "unit_key"]
