"""Results out: a card's release (the rules, the snapshot of what was released, the
signature), and the messages that carry released results: HL7 v2.5.1 ORU^R01 (built and
validated with hl7apy, sent over MLLP) and FHIR R4 Bundles (``fhir.resources.R4B``).

=================  =================================================================
``rules``          when a card may be released (called or explained, plates accepted,
                   no open exception)
``snapshot``       what a release carries, its digest, what an amendment changes
``service``        releasing a card (signed with the password), the cards' statuses
``codes``          the reporting codes (``analytes/reporting.yaml``)
``oru``            one ORU^R01 message per release
``fhir``           one FHIR R4 Bundle per release
``mllp``           a small MLLP client: frame, send, read the acknowledgement
``export``         the exports: files, and sending with retries and a log
=================  =================================================================
"""
