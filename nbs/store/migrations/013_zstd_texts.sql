-- 013: the long and the nearly unique texts of the biggest tables stored with ZSTD.
--
-- DuckDB compresses text with DICT_FSST unless told otherwise. On texts that are nearly
-- all different it is slow to write and saves little:
-- * a call's reason (~160 characters, its values differ from card to card): seven million
--   reasons took 1.6 s and 180 MB to write with DICT_FSST, 0.8 s and 73 MB with ZSTD
--   (reading them all: 0.50 s against 0.58 s);
-- * card and baby ids: migration 012 stored them uncompressed (faster to write than
--   DICT_FSST, but twice the bytes); ZSTD writes them as fast, in half the bytes.
--   screened keeps DICT_FSST: its insert was slower with ZSTD (1.25 s against 1.0 s).
-- Texts with few distinct values (condition, call, analyte...) keep DICT_FSST: ZSTD is
-- slower and bigger there.
--
-- Only how the facts are stored changes: the same rows, columns, constraints and
-- defaults. To go back: the same statements with the 012 compression. ZSTD needs a
-- database file of DuckDB's storage format 1.2 or later (every file this project's
-- DuckDB 2.0 creates).

CREATE TABLE calls_013 (
    specimen_id   VARCHAR USING COMPRESSION zstd NOT NULL,
    baby_id       VARCHAR USING COMPRESSION zstd,
    condition     VARCHAR NOT NULL,
    call          VARCHAR NOT NULL,
    urgency       VARCHAR,
    level_first   TINYINT,
    level_final   TINYINT,
    basis         VARCHAR,
    reason        VARCHAR USING COMPRESSION zstd NOT NULL,
    explanation   VARCHAR USING COMPRESSION zstd,
    rule_version  VARCHAR,
    evidence      VARCHAR,
    run_id        VARCHAR NOT NULL,
    run_seq       INTEGER,
    evaluated_at  TIMESTAMP,
    kind          VARCHAR DEFAULT 'screening'
);
INSERT INTO calls_013 SELECT * FROM calls;
DROP TABLE calls;
ALTER TABLE calls_013 RENAME TO calls;

CREATE TABLE results_013 (
    specimen_id     VARCHAR USING COMPRESSION zstd NOT NULL,
    analyte         VARCHAR NOT NULL,
    replicate       INTEGER NOT NULL,
    value           DOUBLE,
    unit            VARCHAR NOT NULL,
    value_reported  DOUBLE,
    measured_at     TIMESTAMP,
    flag            VARCHAR,
    file_sha256     VARCHAR,
    row_number      INTEGER,
    run_id          VARCHAR NOT NULL
);
INSERT INTO results_013 SELECT * FROM results;
DROP TABLE results;
ALTER TABLE results_013 RENAME TO results;

CREATE TABLE raw_result_rows_013 (
    file_sha256   VARCHAR NOT NULL,
    row_number    INTEGER NOT NULL,
    specimen_id   VARCHAR USING COMPRESSION zstd,
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
INSERT INTO raw_result_rows_013 SELECT * FROM raw_result_rows;
DROP TABLE raw_result_rows;
ALTER TABLE raw_result_rows_013 RENAME TO raw_result_rows;
