"""The real thing: a Prefect server on loopback, the deployments of ``prefect.yaml``, a
process worker, and the daily screening deployment triggered and watched to the end;
then the DuckDB file is checked. Everything started is stopped."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import polars as pl
import pytest

from data_samples import EXPECTED_RECALLS, SAMPLE_INBOX
from nbs import store
from nbs.integrations.prefect.ops import PrefectSite, running_site
from nbs.run import allocator
from nbs.web.process import free_port

pytestmark = [pytest.mark.prefect, pytest.mark.xdist_group("prefect-server")]


def test_daily_deployment_runs_on_a_real_server_and_worker(tmp_path: Path) -> None:
    site = PrefectSite(home=tmp_path / "prefect-home", port=free_port())
    inbox, db = tmp_path / "inbox", tmp_path / "lab.duckdb"
    shutil.copytree(SAMPLE_INBOX, inbox)
    t0 = time.perf_counter()
    with running_site(site):
        t_up = time.perf_counter() - t0
        listed = site.prefect("deployment", "ls").stdout
        for name in ("daily-screening", "screening-on-demand", "yearly-report"):
            assert name in listed
        # the flow's process gets polars' allocator setting (nbs.run.allocator)
        inspected = site.prefect("deployment", "inspect", "screening_run/daily-screening")
        assert allocator.POLARS_JEMALLOC_CONF in inspected.stdout
        t1 = time.perf_counter()
        run = site.prefect(
            "deployment",
            "run",
            "screening_run/daily-screening",
            "--params",
            json.dumps({"inbox": str(inbox), "db": str(db), "cutoffs_dir": None}),
            "--watch",
            "--watch-timeout",
            "240",
            timeout=300,
        )
        t_run = time.perf_counter() - t1
        assert run.returncode == 0, run.stdout + run.stderr
        assert "Completed" in run.stdout
    print(f"\nserver + deploy + worker up: {t_up:.1f} s; triggered run to completion {t_run:.1f} s")
    runs = store.query(db, "SELECT engine FROM runs")
    assert runs["engine"].to_list() == ["prefect"]
    recalls = store.query(db, "SELECT count(*) FROM recall_list").item()
    assert recalls == pl.read_csv(EXPECTED_RECALLS).height
    assert not any(p.is_file() for p in inbox.iterdir())  # everything archived
