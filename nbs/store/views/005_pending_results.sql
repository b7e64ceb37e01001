-- Results waiting for their card, with their texts.
CREATE OR REPLACE VIEW pending_results AS
SELECT d.*
FROM result_details d ANTI JOIN specimens s USING (specimen_id);
