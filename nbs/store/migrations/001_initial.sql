-- 001: the screening run's tables and the contract's relations.
-- Natural keys make every write idempotent: re-running a run or re-dropping a file
-- inserts nothing twice.

CREATE TABLE runs (
    run_id          VARCHAR PRIMARY KEY,
    run_seq         INTEGER NOT NULL UNIQUE,
    started_at      TIMESTAMP NOT NULL,
    committed_at    TIMESTAMP NOT NULL,
    inbox           VARCHAR NOT NULL,
    engine          VARCHAR NOT NULL,
    cutoff_versions VARCHAR,
    summary_json    VARCHAR NOT NULL
);

-- Every file the laboratory dropped, by content hash (same content = same file).
CREATE TABLE ingested_files (
    file_sha256     VARCHAR PRIMARY KEY,
    file_name       VARCHAR NOT NULL,
    kind            VARCHAR NOT NULL,
    run_id          VARCHAR NOT NULL,
    ingested_at     TIMESTAMP NOT NULL,
    status          VARCHAR NOT NULL,          -- ingested | unreadable
    rows_read       INTEGER NOT NULL,
    rows_quarantined INTEGER NOT NULL,
    archived_as     VARCHAR NOT NULL,          -- where the file is kept
    error           VARCHAR
);

-- The rows exactly as they arrived (text), whatever became of them.
CREATE TABLE raw_specimen_rows (
    file_sha256 VARCHAR NOT NULL, row_number INTEGER NOT NULL,
    specimen_id VARCHAR, baby_id VARCHAR, birth_at VARCHAR, collected_at VARCHAR,
    received_at VARCHAR, sex VARCHAR, birth_weight_g VARCHAR, gestational_age_weeks VARCHAR,
    transfusion VARCHAR, parenteral_nutrition VARCHAR, consent_cf VARCHAR,
    specimen_quality VARCHAR, submitter VARCHAR,
    PRIMARY KEY (file_sha256, row_number)
);
CREATE TABLE raw_result_rows (
    file_sha256 VARCHAR NOT NULL, row_number INTEGER NOT NULL,
    specimen_id VARCHAR, analyte VARCHAR, value VARCHAR, unit VARCHAR, measured_at VARCHAR,
    instrument VARCHAR, plate_id VARCHAR, well VARCHAR, replicate VARCHAR, flag VARCHAR,
    PRIMARY KEY (file_sha256, row_number)
);

-- Rows held back: file, row, column, value as it arrived, reason.
CREATE TABLE quarantine (
    file_sha256     VARCHAR NOT NULL,
    file_name       VARCHAR NOT NULL,
    kind            VARCHAR NOT NULL,
    row_number      INTEGER NOT NULL,
    column_name     VARCHAR NOT NULL,
    value           VARCHAR,
    reason          VARCHAR NOT NULL,
    run_id          VARCHAR NOT NULL,
    quarantined_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (file_sha256, row_number, column_name, reason)
);

CREATE TABLE specimens (
    specimen_id           VARCHAR PRIMARY KEY,
    baby_id               VARCHAR NOT NULL,
    birth_at              TIMESTAMP NOT NULL,
    collected_at          TIMESTAMP NOT NULL,
    received_at           TIMESTAMP NOT NULL,
    sex                   VARCHAR NOT NULL,
    birth_weight_g        INTEGER,
    gestational_age_weeks INTEGER,
    transfusion           BOOLEAN,
    parenteral_nutrition  BOOLEAN,
    consent_cf            BOOLEAN,
    specimen_quality      VARCHAR NOT NULL,
    submitter             VARCHAR,
    file_sha256           VARCHAR NOT NULL,
    row_number            INTEGER NOT NULL,
    run_id                VARCHAR NOT NULL
);

-- Cards kept but flagged (missing essential information, weight implausible for age).
CREATE TABLE specimen_warnings (
    specimen_id  VARCHAR NOT NULL,
    column_name  VARCHAR NOT NULL,
    reason       VARCHAR NOT NULL,
    run_id       VARCHAR NOT NULL,
    PRIMARY KEY (specimen_id, column_name, reason)
);

-- Results in the catalogue unit; as reported kept beside. A result whose card has not
-- arrived yet is stored too: it is pending (view pending_results) until the card comes.
CREATE TABLE results (
    specimen_id      VARCHAR NOT NULL,
    analyte          VARCHAR NOT NULL,
    replicate        INTEGER NOT NULL,
    value            DOUBLE,
    unit             VARCHAR NOT NULL,
    value_reported   DOUBLE,
    unit_reported    VARCHAR NOT NULL,
    analyte_reported VARCHAR NOT NULL,
    measured_at      TIMESTAMP NOT NULL,
    instrument       VARCHAR NOT NULL,
    plate_id         VARCHAR NOT NULL,
    well             VARCHAR,
    flag             VARCHAR,
    file_sha256      VARCHAR NOT NULL,
    row_number       INTEGER NOT NULL,
    run_id           VARCHAR NOT NULL,
    PRIMARY KEY (specimen_id, analyte, replicate)
);

-- Every evaluation ever made; screening_calls shows the current one per card and condition.
CREATE TABLE calls (
    specimen_id   VARCHAR NOT NULL,
    baby_id       VARCHAR NOT NULL,
    condition     VARCHAR NOT NULL,
    call          VARCHAR NOT NULL,
    urgency       VARCHAR,
    level_first   TINYINT,
    level_final   TINYINT,
    basis         VARCHAR,
    reason        VARCHAR NOT NULL,
    explanation   VARCHAR,
    rule_version  VARCHAR,
    evidence      VARCHAR NOT NULL,
    run_id        VARCHAR NOT NULL,
    run_seq       INTEGER NOT NULL,
    evaluated_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (specimen_id, condition, rule_version, evidence)
);

CREATE TABLE retests (
    specimen_id   VARCHAR NOT NULL,
    condition     VARCHAR NOT NULL,
    reason        VARCHAR NOT NULL,
    priority      VARCHAR NOT NULL,
    rule_version  VARCHAR,
    created_at    TIMESTAMP NOT NULL,
    run_id        VARCHAR NOT NULL,
    status        VARCHAR NOT NULL,   -- open | done
    done_at       TIMESTAMP,
    done_run_id   VARCHAR,
    PRIMARY KEY (specimen_id, condition)
);

CREATE TABLE recalls (
    recall_id     VARCHAR PRIMARY KEY,
    baby_id       VARCHAR NOT NULL,
    specimen_id   VARCHAR NOT NULL,
    condition     VARCHAR,            -- NULL: specimen-level (repeat card)
    action        VARCHAR NOT NULL,   -- repeat_specimen | referral
    urgency       VARCHAR NOT NULL,
    reason        VARCHAR NOT NULL,
    rule_version  VARCHAR,
    created_at    TIMESTAMP NOT NULL,
    run_id        VARCHAR NOT NULL,
    status        VARCHAR NOT NULL,   -- open | closed
    outcome       VARCHAR,
    closed_at     TIMESTAMP,
    closed_by     VARCHAR
);

-- Append-only history of every change a person makes to a recall.
CREATE TABLE recall_events (
    recall_id   VARCHAR NOT NULL,
    event_at    TIMESTAMP NOT NULL,
    actor       VARCHAR NOT NULL,
    field       VARCHAR NOT NULL,
    old_value   VARCHAR,
    new_value   VARCHAR,
    note        VARCHAR
);

-- Contract relations --------------------------------------------------------------

CREATE VIEW screening_calls AS
SELECT specimen_id, baby_id, condition, call, reason, rule_version, evaluated_at,
       urgency, basis, explanation, run_id
FROM (
    SELECT *, row_number() OVER (PARTITION BY specimen_id, condition
                                 ORDER BY run_seq DESC, evaluated_at DESC) AS rn
    FROM calls
) WHERE rn = 1;

CREATE VIEW recall_list AS
SELECT recall_id, baby_id, specimen_id, condition, action, urgency, reason, rule_version,
       created_at, status, outcome, closed_at, closed_by, run_id
FROM recalls;

CREATE VIEW retest_worklist AS
SELECT specimen_id, condition, reason, created_at, status, priority, rule_version, done_at
FROM retests;

CREATE VIEW pending_results AS
SELECT r.*
FROM results r ANTI JOIN specimens s USING (specimen_id);

-- Babies are counted once, in the year of their first card that was evaluated for the
-- condition; recalls of any card of the baby in that year count for the condition.
CREATE VIEW yield_by_year AS
WITH first_cards AS (
    SELECT c.condition, c.baby_id, min(s.collected_at) AS first_at
    FROM screening_calls c JOIN specimens s USING (specimen_id)
    WHERE c.call <> 'not_evaluated'
    GROUP BY c.condition, c.baby_id
),
screened AS (
    SELECT year(first_at) AS year, condition, count(*) AS screened
    FROM first_cards GROUP BY ALL
),
recall_counts AS (
    SELECT year(s.collected_at) AS year, r.condition,
           count(*) FILTER (WHERE r.action = 'repeat_specimen') AS repeat_requests,
           count(*) FILTER (WHERE r.action = 'referral') AS referrals,
           count(*) FILTER (WHERE r.action = 'referral' AND r.outcome = 'confirmed') AS confirmed,
           count(*) FILTER (WHERE r.action = 'referral' AND r.outcome = 'false_positive')
               AS false_positives
    FROM recalls r JOIN specimens s USING (specimen_id)
    WHERE r.condition IS NOT NULL
    GROUP BY ALL
)
SELECT s.year, s.condition, s.screened,
       coalesce(rc.repeat_requests, 0) AS repeat_requests,
       coalesce(rc.referrals, 0) AS referrals,
       coalesce(rc.confirmed, 0) AS confirmed,
       coalesce(rc.false_positives, 0) AS false_positives,
       round(100.0 * coalesce(rc.referrals, 0) / s.screened, 4) AS recall_rate_pct,
       CASE WHEN coalesce(rc.referrals, 0) = 0 THEN NULL
            ELSE round(100.0 * rc.confirmed / rc.referrals, 2) END AS ppv_pct,
       round(100000.0 * coalesce(rc.confirmed, 0) / s.screened, 2) AS incidence_per_100k
FROM screened s LEFT JOIN recall_counts rc USING (year, condition)
ORDER BY s.year, s.condition;
