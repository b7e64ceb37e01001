"""Synthetic sample data: the committed sample inbox, its expected outcomes, and the cohort
generator. Everything here is synthetic; no real patient data is ever committed."""

from pathlib import Path

HERE = Path(__file__).parent
SAMPLE_INBOX = HERE / "sample_inbox"
EXPECTED_CALLS = HERE / "expected_calls.csv"
EXPECTED_RECALLS = HERE / "expected_recalls.csv"
EXPECTED_QUARANTINE = HERE / "expected_quarantine.csv"
