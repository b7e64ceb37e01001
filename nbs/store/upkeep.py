"""What the statistics views read, kept by each run's commit (in its transaction, and
idempotent): the views then need no window over every card nor a join with every baby."""

from __future__ import annotations

import datetime as dt

from nbs.store.connection import Connection


def keep_statistics(
    con: Connection,
    calls: str,
    cards: str,
    warnings: str,
    markers: str,
    multi_card_babies: str,
    reevaluated_cards: str,
    now: dt.datetime,
) -> None:
    """Keep what the statistics views read, in the run's transaction (idempotent): when
    each card's calls became final (``specimens.reported_at``), each baby's first card
    (``specimens.first_of_baby``) and first evaluated card per condition with its current
    call (``screened``), the year a recall's baby is counted in (``recalls.cohort_year``),
    the conditions' markers, and which cards lack essential information. Only this run's
    babies are touched. The arguments are SQL reading the run's parts."""
    _keep_card_flags(con, calls, cards, warnings, now)
    _keep_screened(con, calls, multi_card_babies, reevaluated_cards)
    con.execute(
        f"UPDATE recalls SET cohort_year = s.year FROM screened s "
        f"WHERE recalls.condition = s.condition AND recalls.baby_id = s.baby_id "
        f"AND recalls.baby_id IN (SELECT baby_id FROM {calls}) "
        f"AND recalls.cohort_year IS DISTINCT FROM s.year"
    )
    con.execute(f"INSERT OR IGNORE INTO condition_markers SELECT condition, marker FROM {markers}")
    _keep_marker_months(con, calls)


def _keep_card_flags(
    con: Connection, calls: str, cards: str, warnings: str, now: dt.datetime
) -> None:
    """``specimens.missing_information``, ``reported_at`` and ``first_of_baby``."""
    con.execute(
        f"UPDATE specimens SET missing_information = true WHERE specimen_id IN ("
        f"  SELECT specimen_id FROM {warnings} "
        f"  WHERE reason LIKE 'missing essential information%') "
        f"AND NOT coalesce(missing_information, false)"
    )
    con.execute(
        f"UPDATE specimens SET reported_at = ? WHERE reported_at IS NULL AND specimen_id IN ("
        f"  SELECT specimen_id FROM {calls} GROUP BY specimen_id "
        f"  HAVING NOT bool_or(call = 'retest'))",
        [now],
    )
    con.execute(
        f"UPDATE specimens SET first_of_baby = (specimens.specimen_id = f.first_id) FROM ("
        f"  SELECT baby_id, arg_min(specimen_id, (collected_at, specimen_id)) AS first_id "
        f"  FROM specimens "
        f"  WHERE baby_id IN (SELECT baby_id FROM {cards}) GROUP BY baby_id) f "
        f"WHERE specimens.baby_id = f.baby_id "
        f"AND specimens.first_of_baby IS DISTINCT FROM (specimens.specimen_id = f.first_id)"
    )


def _keep_screened(
    con: Connection, calls: str, multi_card_babies: str, reevaluated_cards: str
) -> None:
    """``screened``: each baby's first evaluated card per condition, with its current call."""
    # the run's first evaluated card per baby and condition, and its call, computed once
    # for both uses; cards collected at the same time: the smaller id, as the evaluation
    # orders them. Only babies with more than one card in the run need grouping (a few in
    # a thousand), a third of the time of grouping every call of the run
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _firsts AS "
        f"WITH evaluated AS ("
        f"  SELECT condition, baby_id, specimen_id, collected_at, call FROM {calls} "
        f"  WHERE call <> 'not_evaluated') "
        f"SELECT * FROM evaluated ANTI JOIN {multi_card_babies} USING (baby_id) "
        f"UNION ALL "
        f"SELECT condition, baby_id, arg_min(specimen_id, (collected_at, specimen_id)), "
        f"min(collected_at), arg_min(call, (collected_at, specimen_id)) "
        f"FROM evaluated SEMI JOIN {multi_card_babies} USING (baby_id) "
        f"GROUP BY condition, baby_id"
    )
    # a card collected earlier that arrives late becomes the baby's first card (before the
    # insert: a row the insert adds comes from _firsts and needs no update, and at a million
    # new babies the update then joins an empty table instead of seven million rows)
    con.execute(
        "UPDATE screened SET first_specimen_id = n.specimen_id, "
        "first_collected_at = n.collected_at, year = year(n.collected_at), "
        "first_call = n.call FROM _firsts n "
        "WHERE screened.condition = n.condition AND screened.baby_id = n.baby_id "
        "AND (n.collected_at, n.specimen_id) "
        "< (screened.first_collected_at, screened.first_specimen_id)"
    )
    con.execute(
        "INSERT INTO screened (condition, baby_id, first_specimen_id, first_collected_at, "
        "year, first_call) "
        "SELECT condition, baby_id, specimen_id, collected_at, year(collected_at), call "
        "FROM _firsts n WHERE NOT EXISTS ("
        "  SELECT 1 FROM screened x WHERE x.condition = n.condition AND x.baby_id = n.baby_id)"
    )
    # The run's call is a new card's only call. A card evaluated again keeps its latest
    # screening call: the run adds none where the same call (version, evidence) was made
    # before, by a screening or a reprocessing run. Latest as in the view screening_calls,
    # by arg_max: the view's window is not narrowed to these cards (ten times slower
    # for 200 cards among a million)
    con.execute(
        f"UPDATE screened SET first_call = l.call FROM ("
        f"  SELECT specimen_id, condition, arg_max(call, run_seq) AS call FROM calls "
        f"  WHERE kind = 'screening' "
        f"  AND specimen_id IN (SELECT specimen_id FROM {reevaluated_cards}) "
        f"  GROUP BY specimen_id, condition) l "
        f"WHERE screened.first_specimen_id = l.specimen_id "
        f"AND screened.condition = l.condition AND screened.first_call IS DISTINCT FROM l.call"
    )
    con.execute("DROP TABLE _firsts")


def _keep_marker_months(con: Connection, calls: str) -> None:
    """``marker_month_percentiles`` again for the months the run's cards fall in."""
    span = con.execute(
        f"SELECT min(date_trunc('month', collected_at))::DATE, "
        f"max(date_trunc('month', collected_at))::DATE FROM {calls}"
    ).fetchone()
    if span and span[0] is not None:
        con.execute(
            "DELETE FROM marker_month_percentiles WHERE month BETWEEN ? AND ?", [span[0], span[1]]
        )
        con.execute(
            "INSERT INTO marker_month_percentiles SELECT * FROM marker_month_stats(?, ?)",
            [span[0], span[1]],
        )
