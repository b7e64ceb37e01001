"""Choosing and running an engine: the Prefect flow or the same steps in-process."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from nbs.config import ScreeningConfig
from nbs.run.steps import run_local
from nbs.run.summary import RunSummary

Engine = Literal["auto", "prefect", "local", "dask"]

#: Prefect settings that keep every connection on this machine (no telemetry), and give
#: the temporary server the start-up time it needs here (STACK-FACTS: 10-30 s).
OFFLINE_PREFECT = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
}


def prefect_api_configured() -> bool:
    """True when a Prefect API is configured (env var or the active Prefect profile).

    Checked without importing Prefect (which takes ~1.5 s): a plain run stays fast.
    """
    if os.environ.get("PREFECT_API_URL"):
        return True
    home = Path(os.environ.get("PREFECT_HOME", Path.home() / ".prefect"))
    profiles = home / "profiles.toml"
    if not profiles.is_file():
        return False
    try:
        data = tomllib.loads(profiles.read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return False
    active = os.environ.get("PREFECT_PROFILE") or data.get("active", "ephemeral")
    return bool(data.get("profiles", {}).get(active, {}).get("PREFECT_API_URL"))


def resolve_engine(engine: Engine) -> Literal["prefect", "local", "dask"]:
    """``auto`` -> ``prefect`` when an API is configured, else ``local``."""
    if engine == "auto":
        return "prefect" if prefect_api_configured() else "local"
    return engine


def run(
    inbox: Path,
    db: Path,
    config: ScreeningConfig,
    engine: Engine = "auto",
    cutoffs_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
    dask_address: str | None = None,
) -> RunSummary:
    """One screening run with the chosen engine; all write identical results. ``dask``
    is the Prefect flow with its per-file tasks on a Dask cluster (``dask_address``, or a
    local cluster)."""
    chosen = resolve_engine(engine)
    if chosen == "local":
        return run_local(inbox, db, config, progress)
    # offline and patient by default; an operator's explicit settings win
    for name, value in OFFLINE_PREFECT.items():
        os.environ.setdefault(name, value)
    from flows.screening import screening_run, with_dask

    flow = with_dask(dask_address) if chosen == "dask" else screening_run
    result = flow(str(inbox), str(db), str(cutoffs_dir) if cutoffs_dir else None, chosen)
    assert isinstance(result, RunSummary)
    return result
