"""The Prefect flow: deployment declaration (fast tier) and the real flow against a
temporary Prefect server (integration tier, one server for the session)."""

from __future__ import annotations

import inspect
import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml

from data_samples import EXPECTED_RECALLS, SAMPLE_INBOX
from nbs.config import ScreeningConfig
from nbs.run.steps import run_local
from tests.helpers import db_state

ROOT = Path(__file__).resolve().parents[2]


def test_prefect_yaml_declares_a_scheduled_screening_deployment() -> None:
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    deployments = {d["name"]: d for d in spec["deployments"]}
    daily = deployments["daily-screening"]
    module, _, name = daily["entrypoint"].partition(":")
    assert module == "flows/screening.py" and name == "screening_run"
    assert daily["work_pool"]["name"] == "nbs-lab"
    cron = daily["schedules"][0]["cron"]
    _minute, hour, _, _, weekdays = cron.split()
    assert weekdays == "1-5" and int(hour) < 8  # early each weekday morning
    from prefect.client.schemas.schedules import CronSchedule

    schedule = CronSchedule(cron=cron, timezone=daily["schedules"][0]["timezone"])
    assert schedule.timezone == "Europe/Luxembourg"


def test_deployment_parameters_match_the_flow_signature() -> None:
    import importlib

    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    assert {d["name"] for d in spec["deployments"]} >= {
        "daily-screening",
        "screening-on-demand",
        "yearly-report",
        "reprocess",
    }
    for deployment in spec["deployments"]:
        path, _, name = deployment["entrypoint"].partition(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        params = set(inspect.signature(getattr(module, name).fn).parameters)
        assert set(deployment["parameters"]) == params, deployment["name"]


def test_retry_condition_retries_only_a_locked_database() -> None:
    from flows.screening import _only_when_busy
    from nbs.store import DatabaseBusy

    class State:
        def __init__(self, exc: Exception) -> None:
            self.exc = exc

        def result(self) -> None:
            raise self.exc

    assert _only_when_busy(None, None, State(DatabaseBusy("locked")))
    assert not _only_when_busy(None, None, State(ValueError("bad data")))


@pytest.mark.prefect
@pytest.mark.xdist_group("prefect")
def test_prefect_flow_and_local_engine_write_identical_results(
    prefect_harness: None, tmp_path: Path, config: ScreeningConfig
) -> None:
    from prefect.client.orchestration import get_client

    from flows.screening import screening_run
    from nbs.run.steps import RunSummary

    local_inbox, flow_inbox = tmp_path / "a", tmp_path / "b"
    shutil.copytree(SAMPLE_INBOX, local_inbox)
    shutil.copytree(SAMPLE_INBOX, flow_inbox)
    local_db, flow_db = tmp_path / "local.duckdb", tmp_path / "flow.duckdb"

    run_local(local_inbox, local_db, config)
    summary = screening_run(str(flow_inbox), str(flow_db))

    assert isinstance(summary, RunSummary) and summary.engine == "prefect"
    assert db_state(flow_db) == db_state(local_db)
    assert sorted(p.name for p in (flow_inbox / "archive").rglob("*.csv")) == sorted(
        p.name for p in (local_inbox / "archive").rglob("*.csv")
    )

    import asyncio

    async def artifact_markdown() -> str:
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

        async with get_client() as client:
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    key=ArtifactFilterKey(any_=["screening-run-summary"])
                )
            )
        return str(found[-1].data)

    markdown = asyncio.run(artifact_markdown())
    assert summary.run_id in markdown
    assert "20260302-broken.results.csv" in markdown and "unreadable" in markdown
    assert f"new recalls: {summary.new_recalls}" in markdown
    assert summary.new_recalls == pl.read_csv(EXPECTED_RECALLS).height


@pytest.mark.prefect
@pytest.mark.xdist_group("prefect")
def test_annual_report_flow_writes_the_report_and_an_artifact(
    prefect_harness: None, tmp_path: Path
) -> None:
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from data_samples.stats_cohort import write_cohort
    from flows.annual_report import annual_report
    from tests.helpers import STATS_COHORT

    db = tmp_path / "nbs.duckdb"
    write_cohort(db, STATS_COHORT)
    markdown = annual_report(str(db), str(tmp_path / "reports"), year=2025)
    assert (tmp_path / "reports" / "2025" / "nbs-annual-report-2025.html").exists()
    assert (tmp_path / "nbs.stats.duckdb").exists()
    assert "| CH | 1500 | 7 | 2 |" in markdown  # screened, referrals, confirmed

    async def artifact() -> str:
        async with get_client() as client:
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["annual-report"]))
            )
        return str(found[-1].data)

    assert "nbs.stats.duckdb" in asyncio.run(artifact())


@pytest.mark.prefect
@pytest.mark.xdist_group("prefect")
def test_reprocess_flow_keeps_old_calls_and_reports(
    prefect_harness: None, tmp_path: Path, config: ScreeningConfig
) -> None:
    from flows.reprocess import reprocess_run
    from nbs import store

    inbox = tmp_path / "inbox"
    shutil.copytree(SAMPLE_INBOX, inbox)
    db = tmp_path / "lab.duckdb"
    run_local(inbox, db, config)
    current = store.query(db, "SELECT count(*) FROM screening_calls").item()
    summary = reprocess_run(str(db), "LNS-2024.1", specimen_ids=["S-PKU1", "S-SCID1"])
    assert summary.cards == 2 and summary.calls_added > 0
    assert store.query(db, "SELECT count(*) FROM screening_calls").item() == current


@pytest.mark.prefect
@pytest.mark.xdist_group("prefect")
def test_nbs_run_engine_prefect_uses_the_flow(
    prefect_harness: None, tmp_path: Path, config: ScreeningConfig
) -> None:
    from nbs.run import engines as engine

    inbox = tmp_path / "inbox"
    shutil.copytree(SAMPLE_INBOX, inbox)
    summary = engine.run(inbox, tmp_path / "db.duckdb", config, "prefect")
    assert summary.engine == "prefect"
    assert summary.new_recalls == pl.read_csv(EXPECTED_RECALLS).height


def test_fast_tier_never_starts_a_prefect_server(tmp_path: Path) -> None:
    """Without the integration harness, calling the flow fails at once instead of
    starting a temporary Prefect server (10-30 s here)."""
    import os
    import subprocess
    import sys

    code = (
        "import time; from flows.screening import screening_run\n"
        "t = time.perf_counter()\n"
        "try:\n"
        f"    screening_run({str(tmp_path)!r}, {str(tmp_path / 'x.duckdb')!r})\n"
        "except ValueError as exc:\n"
        "    print('refused', round(time.perf_counter() - t, 2), exc)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.stdout.startswith("refused"), proc.stdout + proc.stderr
    assert float(proc.stdout.split()[1]) < 5
    assert not (tmp_path / "x.duckdb").exists()


@pytest.mark.prefect
@pytest.mark.xdist_group("prefect")
def test_a_failed_run_is_logged_and_notified_through_a_webhook_block(
    prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import http.server
    import json
    import threading

    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    from flows.screening import screening_run

    received: list[dict[str, str]] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        CustomWebhookNotificationBlock(
            name="lab-alerts",
            url=f"http://127.0.0.1:{server.server_port}/hook",
            json_data={"text": "{{subject}}: {{body}}"},
            allow_private_urls=True,
        ).save("lab-alerts", overwrite=True)
        monkeypatch.setenv("NBS_NOTIFY_BLOCK", "custom-webhook/lab-alerts")
        db = tmp_path / "lab.duckdb"
        with pytest.raises(FileNotFoundError):
            screening_run(str(tmp_path / "no-such-inbox"), str(db))
    finally:
        server.shutdown()
    log = (tmp_path / "lab.duckdb.failures.log").read_text()
    assert "screening_run run" in log and "no-such-inbox" in log and "failed" in log
    assert len(received) == 1 and "screening_run failed" in received[0]["text"]
    assert "no-such-inbox" in received[0]["text"]


@pytest.mark.prefect
@pytest.mark.xdist_group("prefect")
def test_the_flow_on_a_local_dask_cluster_writes_the_same_results(
    prefect_harness: None,
    tmp_path: Path,
    config: ScreeningConfig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from nbs.run import engines as engine

    monkeypatch.setenv("NBS_SMALL_INBOX_BYTES", "0")  # a task per file, as for big ones

    local_inbox, dask_inbox = tmp_path / "a", tmp_path / "b"
    shutil.copytree(SAMPLE_INBOX, local_inbox)
    shutil.copytree(SAMPLE_INBOX, dask_inbox)
    local = run_local(local_inbox, tmp_path / "local.duckdb", config)
    summary = engine.run(dask_inbox, tmp_path / "dask.duckdb", config, "dask")
    assert summary.engine == "dask"  # recorded as what ran it
    from nbs import store

    assert store.query(tmp_path / "dask.duckdb", "SELECT engine FROM runs").item() == "dask"
    assert db_state(tmp_path / "dask.duckdb") == db_state(tmp_path / "local.duckdb")
    assert summary.files == local.files  # the per-file outcomes came back from the workers


def test_the_flow_stages_at_most_two_files_at_a_time() -> None:
    """Prefect's thread pool has no bound of its own: the flow sets one (a big file's
    staging holds up to ~1.8 GiB, and the flow stages a big inbox a task per file)."""
    from flows.screening import screening_run
    from nbs import settings

    runner = screening_run.task_runner.duplicate()  # as each flow run builds it
    assert runner._max_workers == settings.current().staging_threads == 2  # type: ignore[attr-defined]
