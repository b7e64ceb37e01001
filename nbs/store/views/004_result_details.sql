-- A result with the texts of the row it was read from, as it arrived.
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
