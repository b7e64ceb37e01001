"""What happens when a flow run fails: a line in the laboratory's failure log beside the
database, and, if configured, a message through a Prefect notification block (e-mail,
webhook, chat), named in the ``notify_block`` setting (``NBS_NOTIFY_BLOCK``) as ``block-type/name``
(for example ``custom-webhook/lab-alerts`` or ``email-server-credentials/...``).

The message says what failed and whether the run's data were committed (``nbs.run.errors``:
before its one transaction nothing is stored and the inbox files are still waiting; after
it the data are stored and the next run archives the files left); either way, re-run it
from Prefect's UI once the cause is fixed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from nbs import settings


def failure_text(flow_name: str, run_name: str, parameters: dict[str, Any], message: str) -> str:
    """One line naming the flow, the run, its inbox and database, and the error."""
    where = ", ".join(f"{k}={parameters[k]}" for k in ("inbox", "db", "year") if k in parameters)
    return f"{flow_name} run {run_name} failed ({where}): {message}"


def notify_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect ``on_failure`` hook of the screening and report flows."""
    parameters = dict(getattr(flow_run, "parameters", {}) or {})
    text = failure_text(flow.name, flow_run.name, parameters, str(state.message or state.name))
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    db = parameters.get("db")
    if db:
        log = Path(str(db)).with_name(Path(str(db)).name + ".failures.log")
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"{stamp} {text}\n")
    block = settings.current().notify_block
    if block:
        from prefect.blocks.core import Block

        notifier: Any = Block.load(block)
        notifier.notify(body=text, subject=f"Newborn screening: {flow.name} failed")
