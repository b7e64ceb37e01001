-- 021: the assay kit's lot of a plate, and patient-based QC per kit lot.
--
-- * plates.kit_lot: the reagent kit lot the plate was measured with, as the export's
--   header or the results file's optional kit_lot column gives it (NULL: not given).
--   A new kit lot can shift patient results without moving the controls, so the
--   moving median of patient results is kept per instrument, analyte and kit lot.
-- * patient_qc_alarms.kit_lot: the series' kit lot ('' when the plates gave none).
ALTER TABLE plates ADD COLUMN kit_lot VARCHAR;
ALTER TABLE patient_qc_alarms ADD COLUMN kit_lot VARCHAR;
