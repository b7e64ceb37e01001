"""Running the laboratory's services: the review application and Prefect."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nbs.cli.common import DbOption, UserError, console, existing_db


def prefect_up(
    home: Annotated[Path, typer.Option(help="Prefect's home folder (database, logs)")] = Path(
        "/var/lib/nbs/prefect"
    ),
    port: Annotated[int, typer.Option(help="loopback port of the server and its UI")] = 4200,
    prefect_file: Annotated[
        Path | None,
        typer.Option(help="the lab's copy of prefect.yaml (default: the one shipped with nbs)"),
    ] = None,
) -> None:
    """Set up and keep running Prefect on this lab machine: a local server (SQLite,
    127.0.0.1), the process work pool, every deployment of prefect.yaml, and a worker.
    Ctrl+C (or SIGTERM from the service manager) stops them."""
    import signal as signals
    import time

    from nbs.integrations.prefect.ops import PREFECT_FILE, PrefectSite, running_site

    if prefect_file is not None and not prefect_file.is_file():
        raise UserError(f"{prefect_file} does not exist")
    chosen = PREFECT_FILE if prefect_file is None else prefect_file.resolve()
    site = PrefectSite(home=home, port=port, prefect_file=chosen)
    signals.signal(signals.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        with running_site(site):
            console.print(
                f"Prefect running: UI http://127.0.0.1:{port}/ , API {site.api_url}; "
                f"deployments of {site.prefect_file} on pool nbs-lab; "
                f"logs in {home}. Ctrl+C stops."
            )
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        console.print("stopped")
    except RuntimeError as exc:
        raise UserError(str(exc)) from exc


def serve(
    db: DbOption,
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    host: Annotated[
        str, typer.Option(help="address to listen on (loopback by default; put TLS in front)")
    ] = "127.0.0.1",
    secure_cookies: Annotated[
        bool,
        typer.Option(
            "--secure-cookies",
            help="send the session cookie over HTTPS only (behind the lab's TLS proxy; "
            "default: the setting NBS_SECURE_COOKIES)",
        ),
    ] = False,
    idle_minutes: Annotated[
        float | None,
        typer.Option(
            "--idle-minutes",
            min=0.01,
            help="sign a session out after this many minutes without a request (default: "
            "the setting NBS_SESSION_IDLE_MINUTES, 30)",
        ),
    ] = None,
) -> None:
    """The review web application for coordinators, the lab and officials (login required)."""
    import uvicorn
    from pydantic import ValidationError

    from nbs import settings as nbs_settings
    from nbs.followup.lifecycle import load_followup
    from nbs.web.app import WebSettings, create_app, load_secret_key

    existing_db(db)  # upgraded to this version's schema if need be
    try:
        configured = nbs_settings.current()
    except ValidationError as exc:
        raise UserError(f"settings: {exc}") from exc
    secure_cookies = secure_cookies or configured.secure_cookies
    if idle_minutes is None:
        idle_minutes = configured.session_idle_minutes
    settings = WebSettings(
        db=db,
        secret_key=load_secret_key(db),
        followup=load_followup(),
        https_only=secure_cookies,
        session_idle_minutes=idle_minutes,
    )
    note = "; Secure cookie: open it through the TLS proxy" if secure_cookies else ""
    console.print(f"NBS review on http://{host}:{port}/ (database {db}{note}); Ctrl+C stops it")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")
