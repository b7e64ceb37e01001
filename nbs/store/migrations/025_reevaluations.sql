-- 025: re-evaluation of stored cards in the clinical record.
--
-- * reevaluation_requests: a laboratory user asks that cards be evaluated again by the
--   next screening run (after a corrected cutoff set, or a corrected card), with the
--   reason. The run evaluates them like any card (screening calls, recalls, worklist)
--   and records itself in run_id; a released card whose call changes is then amended
--   on its next release. A reprocessing (kind 'reprocess') stays a comparison only.
CREATE TABLE reevaluation_requests (
    specimen_id  VARCHAR NOT NULL,
    reason       VARCHAR NOT NULL,
    requested_by VARCHAR NOT NULL,
    requested_at TIMESTAMP NOT NULL,
    run_id       VARCHAR               -- the run that evaluated it (NULL: not yet)
);
