-- 017: plates and their quality control.
--
-- * plates: one row per plate (an instrument's analytical run), judged when it first
--   arrives: accepted, or held by its calibration or controls until a supervisor accepts
--   it (with a reason) or confirms the rejection. No call is made from the specimen
--   results of a plate that is not accepted.
-- * qc_results: the plate's control, calibrator and blank wells as reported, with the
--   rules each control broke (empty: none).
-- * plate_events: the plate's audit trail (who changed its status, when, why).

CREATE TABLE plates (
    plate_id     VARCHAR PRIMARY KEY,
    instrument   VARCHAR NOT NULL,
    run_at       TIMESTAMP NOT NULL,   -- the plate's first measurement
    status       VARCHAR NOT NULL,     -- accepted | held | rejected
    reason       VARCHAR NOT NULL,     -- the rules' verdict, or the supervisor's reason
    qc_version   VARCHAR NOT NULL,
    judged_at    TIMESTAMP NOT NULL,
    decided_by   VARCHAR,              -- the supervisor who accepted or rejected it
    decided_at   TIMESTAMP,
    run_id       VARCHAR NOT NULL,     -- the run that first read the plate
    released_run_id VARCHAR            -- the run that evaluated its cards after acceptance
);

CREATE TABLE qc_results (
    plate_id     VARCHAR NOT NULL,
    well         VARCHAR,
    sample_type  VARCHAR NOT NULL,     -- control | calibrator | blank
    analyte      VARCHAR NOT NULL,
    material     VARCHAR,
    level        VARCHAR,
    lot          VARCHAR,
    value        DOUBLE,
    value_text   VARCHAR,              -- the value as reported
    nominal      DOUBLE,
    ct           DOUBLE,
    measured_at  TIMESTAMP NOT NULL,
    z            DOUBLE,
    rules        VARCHAR NOT NULL,     -- broken rules, e.g. '2-2s' or '1-3s, R-4s'; '' none
    file_sha256  VARCHAR NOT NULL,
    row_number   INTEGER NOT NULL,
    run_id       VARCHAR NOT NULL
);

CREATE TABLE plate_events (
    plate_id    VARCHAR NOT NULL,
    event_at    TIMESTAMP NOT NULL,
    actor       VARCHAR NOT NULL,
    old_status  VARCHAR,
    new_status  VARCHAR NOT NULL,
    reason      VARCHAR NOT NULL
);
