-- 018: patient-based real-time quality control (nbs/qc/patient.py).
--
-- * patient_qc_alarms: one row per alarm a run raised: the moving median (statistic
--   'moving_median') of the last n screen-negative first punches of an instrument and
--   analyte, beyond its alarm limits (low, high) set from the series' history, whose
--   median is the reference. plate_id and measured_at are those of the window's last
--   result; text is the line the run summary and the review application show.
CREATE TABLE patient_qc_alarms (
    run_id       VARCHAR NOT NULL,
    instrument   VARCHAR NOT NULL,
    analyte      VARCHAR NOT NULL,
    statistic    VARCHAR NOT NULL,     -- moving_median
    value        DOUBLE NOT NULL,      -- the statistic, in the analyte's catalogue unit
    unit         VARCHAR,
    side         VARCHAR NOT NULL,     -- above | below
    low          DOUBLE NOT NULL,
    high         DOUBLE NOT NULL,
    reference    DOUBLE NOT NULL,
    n            INTEGER NOT NULL,     -- results in the window
    plate_id     VARCHAR,
    measured_at  TIMESTAMP,
    raised_at    TIMESTAMP NOT NULL,
    text         VARCHAR NOT NULL
);
