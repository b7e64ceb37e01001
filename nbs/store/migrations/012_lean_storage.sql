-- 012: the three biggest tables written at less cost, with the same facts.
--
-- * The card and baby ids of calls, results and raw result rows are stored uncompressed.
--   DuckDB compresses text with DICT_FSST; on ids that are nearly all different it saves
--   little and was the costliest part of writing them: a million cards' commit took
--   ~1.5 s less, for a database file of 1,107 MiB instead of 841 a million cards (with
--   the change below).
--   screened keeps its ids compressed: it is little else than ids, kept for every year
--   the statistics read (ten years of a million babies: 1.6 GB compressed, 3.6 GB not),
--   and it gained only 0.5 s.
-- * results no longer repeats the texts of its raw row: the analyte and unit as reported,
--   the instrument, the plate and the well were copies of raw_result_rows' analyte, unit,
--   instrument, plate_id and well (the same row: file_sha256, row_number). The view
--   result_details joins them back under their old names. Writing eleven million results
--   took 4.8 s instead of 2.8 s, and 169 MB instead of 100 MB.
--
-- Only how the facts are stored changes: the same rows, constraints and defaults. To go
-- back: the same statements without USING COMPRESSION, and the five columns filled from
-- result_details.

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
    specimen_id     VARCHAR USING COMPRESSION uncompressed NOT NULL,
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
-- the texts dropped below must all be in the raw rows: a result without its raw row
-- stops the migration (and the transaction rolls back) rather than lose them
SELECT CASE WHEN count(*) > 0 THEN error(
           'migration 012: ' || count(*) || ' result(s) have no raw row (file_sha256, '
           || 'row_number) to keep their texts as reported; nothing was changed') END
FROM results r
ANTI JOIN raw_result_rows w USING (file_sha256, row_number);
INSERT INTO results_012
SELECT specimen_id, analyte, replicate, value, unit, value_reported, measured_at, flag,
       file_sha256, row_number, run_id
FROM results;
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


-- a result with the texts of the row it was read from, as it arrived
CREATE VIEW result_details AS
SELECT r.specimen_id, r.analyte, r.replicate, r.value, r.unit, r.value_reported,
       w.unit AS unit_reported, w.analyte AS analyte_reported, r.measured_at,
       w.instrument, w.plate_id, w.well, r.flag, r.file_sha256, r.row_number, r.run_id
FROM results r
LEFT JOIN raw_result_rows w
       ON w.file_sha256 = r.file_sha256 AND w.row_number = r.row_number
      -- the same text on both sides: a filter on the card reaches both scans
      AND w.specimen_id = r.specimen_id;

-- results waiting for their card, with their texts as before
CREATE OR REPLACE VIEW pending_results AS
SELECT d.*
FROM result_details d ANTI JOIN specimens s USING (specimen_id);
