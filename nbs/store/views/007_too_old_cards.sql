-- Cards unsatisfactory by transit alone: the submitter called the card ok, but it was
-- received after its cutoff set's transit limit (too_old). The evaluation's card-level
-- recall says so (its text begins as nbs.evaluate.specimen_rules.TOO_OLD_TEXT); the limit
-- is the cutoff set's, so the recall is read rather than the transit time compared with a
-- number here. Every count of unsatisfactory cards counts these too.
CREATE OR REPLACE VIEW too_old_cards AS
SELECT DISTINCT specimen_id FROM recalls
WHERE condition IS NULL AND reason LIKE '%unsatisfactory card (too\_old: received %' ESCAPE '\';
