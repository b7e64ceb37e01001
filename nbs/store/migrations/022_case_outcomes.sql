-- 022: what became of a screened baby, per condition (the officials' QI 5e-g, 7 and 8).
--
-- * case_outcome_events: append-only; each recording of an outcome (a correction is a
--   new row). kind: confirmed (the condition was diagnosed), ruled_out (a false
--   positive: the date the condition was excluded), carrier, or missed (diagnosed later
--   in a baby whose card screened negative for it). The view case_outcomes is the latest
--   row per baby and condition.
CREATE SEQUENCE case_outcome_seq;
CREATE TABLE case_outcome_events (
    seq                  BIGINT NOT NULL DEFAULT nextval('case_outcome_seq'),
    baby_id              VARCHAR NOT NULL,
    condition            VARCHAR NOT NULL,
    kind                 VARCHAR NOT NULL,   -- confirmed | ruled_out | carrier | missed
    specimen_id          VARCHAR,            -- the card it answers (missed: the negative card)
    recall_id            VARCHAR,
    diagnosis_code       VARCHAR,            -- e.g. ORPHA:716, ICD-10 E70.0
    diagnosed_at         DATE,               -- confirmed, missed
    treatment_started_at DATE,               -- confirmed, missed (when treated)
    ruled_out_at         DATE,               -- ruled_out
    recorded_at          TIMESTAMP NOT NULL,
    recorded_by          VARCHAR NOT NULL,
    note                 VARCHAR
);
