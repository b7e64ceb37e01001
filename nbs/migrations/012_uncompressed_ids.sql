-- 012: the card and baby ids of the four biggest tables are stored uncompressed. DuckDB
-- compresses text with DICT_FSST; on ids that are nearly all different it saves little
-- and was the costliest part of writing them: at a million cards (seven million calls and
-- first cards per condition, eleven million results and raw result rows) the commit took
-- ~2 s less (23.6 -> 21.5 s, 40 -> 35.5 CPU-s), for a database ~50 % larger (0.84 ->
-- 1.28 GB a million cards). Only how the columns are stored changes: the same columns,
-- rows, constraints and defaults. To go back: the same statements without
-- USING COMPRESSION.

CREATE TABLE calls_012 (
    specimen_id   VARCHAR USING COMPRESSION uncompressed NOT NULL,
    baby_id       VARCHAR USING COMPRESSION uncompressed,
    condition     VARCHAR NOT NULL,
    call          VARCHAR NOT NULL,
    urgency       VARCHAR,
    level_first   TINYINT,
    level_final   TINYINT,
    basis         VARCHAR,
    reason        VARCHAR NOT NULL,
    explanation   VARCHAR,
    rule_version  VARCHAR,
    evidence      VARCHAR,
    run_id        VARCHAR NOT NULL,
    run_seq       INTEGER,
    evaluated_at  TIMESTAMP,
    kind          VARCHAR DEFAULT 'screening'
);
INSERT INTO calls_012 SELECT * FROM calls;
DROP TABLE calls;
ALTER TABLE calls_012 RENAME TO calls;

CREATE TABLE results_012 (
    specimen_id       VARCHAR USING COMPRESSION uncompressed NOT NULL,
    analyte           VARCHAR NOT NULL,
    replicate         INTEGER NOT NULL,
    value             DOUBLE,
    unit              VARCHAR NOT NULL,
    value_reported    DOUBLE,
    unit_reported     VARCHAR,
    analyte_reported  VARCHAR,
    measured_at       TIMESTAMP,
    instrument        VARCHAR,
    plate_id          VARCHAR,
    well              VARCHAR,
    flag              VARCHAR,
    file_sha256       VARCHAR,
    row_number        INTEGER,
    run_id            VARCHAR NOT NULL
);
INSERT INTO results_012 SELECT * FROM results;
DROP TABLE results;
ALTER TABLE results_012 RENAME TO results;

CREATE TABLE raw_result_rows_012 (
    file_sha256   VARCHAR NOT NULL,
    row_number    INTEGER NOT NULL,
    specimen_id   VARCHAR USING COMPRESSION uncompressed,
    analyte       VARCHAR,
    value         VARCHAR,
    unit          VARCHAR,
    measured_at   VARCHAR,
    instrument    VARCHAR,
    plate_id      VARCHAR,
    well          VARCHAR,
    replicate     VARCHAR,
    flag          VARCHAR
);
INSERT INTO raw_result_rows_012 SELECT * FROM raw_result_rows;
DROP TABLE raw_result_rows;
ALTER TABLE raw_result_rows_012 RENAME TO raw_result_rows;

CREATE TABLE screened_012 (
    condition           VARCHAR NOT NULL,
    baby_id             VARCHAR USING COMPRESSION uncompressed NOT NULL,
    first_specimen_id   VARCHAR USING COMPRESSION uncompressed NOT NULL,
    first_collected_at  TIMESTAMP NOT NULL,
    year                SMALLINT NOT NULL,
    first_call          VARCHAR
);
INSERT INTO screened_012 SELECT * FROM screened;
DROP TABLE screened;
ALTER TABLE screened_012 RENAME TO screened;
