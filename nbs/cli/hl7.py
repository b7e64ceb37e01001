"""``nbs hl7``: HL7 v2 messages: the MLLP listener that takes orders into the inbox."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nbs.cli.common import UserError, console

hl7_app = typer.Typer(help="HL7 v2 messages: orders in.", no_args_is_help=True)


@hl7_app.command("listen")
def listen(
    port: Annotated[int, typer.Option(help="TCP port to listen on")],
    inbox: Annotated[Path, typer.Option(help="inbox folder the messages are written to")],
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
) -> None:
    """Receive HL7 orders over MLLP: each message is written into the inbox and
    acknowledged (AA accepted, AE a value the run will quarantine, AR refused)."""
    from nbs import settings
    from nbs.intake.hl7_listen import Answer, MLLPListener

    if not inbox.is_dir():
        raise UserError(f"inbox {inbox} is not a folder")

    def report(answer: Answer) -> None:
        where = f" -> {answer.kept_as.name}" if answer.kept_as else ""
        why = f": {answer.reason}" if answer.reason else ""
        console.print(
            f"{answer.code} {answer.control_id or '(no control id)'}{where}{why}",
            markup=False,
            highlight=False,
        )

    timeout = settings.current().mllp_listen_timeout_s
    try:
        server = MLLPListener(host, port, inbox, timeout, report)
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    bound_port = server.server_address[1]
    console.print(f"listening on {host}:{bound_port}, writing into {inbox}", markup=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


from nbs.cli.release import export_hl7  # noqa: E402  (results out: nbs/cli/release.py)

hl7_app.command("export")(export_hl7)
