"""``nbs orders``: card orders received as HL7 messages: the list (and the cards ordered
but not received), and the laboratory's receipt of a card."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import polars as pl
import typer

from nbs.cli.common import (
    ByOption,
    DbOption,
    Format,
    UserError,
    check_choice,
    console,
    existing_db,
    print_frame,
)

orders_app = typer.Typer(help="Card orders (HL7) and their receipt.", no_args_is_help=True)

#: the columns the table shows (CSV and JSON carry every column of card_orders)
SHOWN = (
    "specimen_id",
    "baby_id",
    "collected_at",
    "submitter",
    "received_at",
    "card_stored",
    "provider_name",
    "provider_phone",
)


def parse_time(text: str) -> dt.datetime:
    """``--at``: an ISO-8601 date-time in laboratory time (with an offset: converted)."""
    from nbs.validate.times import parse_datetime

    parsed = parse_datetime(pl.Series("at", [text.strip()]))[0]
    if parsed is None:
        raise UserError(f"--at must be an ISO-8601 date-time (2026-01-06T09:30); not {text!r}")
    assert isinstance(parsed, dt.datetime)
    return parsed


def overdue_before(now: dt.datetime | None = None) -> dt.datetime:
    """Orders older than this are overdue (the setting ``orders_overdue_days``)."""
    from nbs import settings

    days = settings.current().orders_overdue_days
    return (now or dt.datetime.now()).replace(microsecond=0) - dt.timedelta(days=days)


@orders_app.command("list")
def orders_list(
    db: DbOption,
    overdue: Annotated[
        bool, typer.Option(help="only cards not received past NBS_ORDERS_OVERDUE_DAYS")
    ] = False,
    received: Annotated[
        bool | None, typer.Option("--received/--not-received", help="received or not")
    ] = None,
    output: Annotated[Format, typer.Option("--format", help="table, csv or json")] = Format.table,
) -> None:
    """The current order of each card, oldest first."""
    from nbs.store import orders

    frame = orders.card_orders(
        existing_db(db),
        received=received,
        overdue_before=overdue_before() if overdue else None,
    )
    if output == Format.table:
        frame = frame.select(SHOWN).with_columns(
            pl.col("collected_at", "received_at").dt.strftime("%Y-%m-%d %H:%M")
        )
    title = "Cards ordered, not received (overdue)" if overdue else "Card orders"
    print_frame(frame, output, f"{title} ({frame.height})")


@orders_app.command("receive")
def orders_receive(
    specimen_id: Annotated[str, typer.Argument(help="the card's id (bar code)")],
    db: DbOption,
    at: Annotated[str | None, typer.Option(help="when it arrived (default: now)")] = None,
    quality: Annotated[str, typer.Option(help="ok, or an unsatisfactory-specimen code")] = "ok",
    consent_cf: Annotated[
        bool | None, typer.Option("--consent-cf/--no-consent-cf", help="CF consent on the card")
    ] = None,
    by: ByOption = None,
) -> None:
    """Record that an ordered card arrived; the next run takes it in as a card."""
    from nbs.followup.lifecycle import current_user
    from nbs.store import orders
    from nbs.validate.schemas import SPECIMEN_QUALITIES

    check_choice("--quality", quality, SPECIMEN_QUALITIES)
    when = parse_time(at) if at else dt.datetime.now().replace(microsecond=0)
    try:
        order = orders.receive_order(
            existing_db(db), specimen_id, when, by or current_user(), quality, consent_cf
        )
    except orders.OrderError as exc:
        raise UserError(str(exc)) from exc
    console.print(
        f"card {specimen_id} received {order['received_at']:%Y-%m-%d %H:%M} "
        f"({order['specimen_quality']}); the next run takes it in",
        markup=False,
        highlight=False,
    )
