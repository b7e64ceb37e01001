-- 015: censored results and the date of the last transfusion.
--
-- * results.censored: '<' where the instrument reported the value as at most its bound
--   ("<0.5", "below range"), '>' where at least ("> 300", "OOR >"); NULL for a plain
--   number. value holds the bound in the catalogue unit; the text as reported stays in
--   the raw row, shown as result_details.value_text.
-- * specimens.last_transfusion_at (and its text in raw_specimen_rows): when the baby was
--   last transfused before the card; a repeat card answers a transfusion request only
--   when collected long enough after it.
ALTER TABLE results ADD COLUMN censored VARCHAR;
ALTER TABLE specimens ADD COLUMN last_transfusion_at TIMESTAMP;
ALTER TABLE raw_specimen_rows ADD COLUMN last_transfusion_at VARCHAR;

-- a result with the texts of the row it was read from, as it arrived
CREATE OR REPLACE VIEW result_details AS
SELECT r.specimen_id, r.analyte, r.replicate, r.value, r.unit, r.value_reported,
       w.unit AS unit_reported, w.analyte AS analyte_reported, r.measured_at,
       w.instrument, w.plate_id, w.well, r.flag, r.file_sha256, r.row_number, r.run_id,
       w.value AS value_text, r.censored
FROM results r
LEFT JOIN raw_result_rows w
       ON w.file_sha256 = r.file_sha256 AND w.row_number = r.row_number
      -- the same text on both sides: a filter on the card reaches both scans
      AND w.specimen_id = r.specimen_id;

-- results waiting for their card, with their texts as before
CREATE OR REPLACE VIEW pending_results AS
SELECT d.*
FROM result_details d ANTI JOIN specimens s USING (specimen_id);
