"""Prefect on one laboratory machine: a local server (SQLite, loopback only), the process
work pool, the deployments of ``prefect.yaml``, and a worker.

``nbs prefect-up`` does all of it and keeps the server and the worker running until it is
stopped; the integration test drives the same functions. Everything stays on the machine:
``PREFECT_HOME`` is the lab's folder, telemetry is off, the server listens on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import flows
from nbs.web.process import wait_until_answers

POOL = "nbs-lab"
# prefect.yaml's entrypoints (flows/...:flow) are relative to the folder that holds the
# flows package: the source checkout, or site-packages once the wheel is installed.
PROJECT_DIR = Path(flows.__file__).resolve().parent.parent
# The canonical prefect.yaml ships inside this package; the checkout's top-level
# prefect.yaml is a link to it.
PREFECT_FILE = Path(str(importlib.resources.files("nbs.integrations.prefect") / "prefect.yaml"))


@dataclass(frozen=True)
class PrefectSite:
    """Where the lab's Prefect lives: its home folder and the loopback port; the
    deployments come from ``prefect_file``, their entrypoints from ``project_dir``."""

    home: Path
    port: int = 4200
    project_dir: Path = PROJECT_DIR
    prefect_file: Path = PREFECT_FILE

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def env(self) -> dict[str, str]:
        """The environment of every Prefect process of this site (offline, local)."""
        env = {
            **os.environ,
            "PREFECT_HOME": str(self.home),
            "PREFECT_API_URL": self.api_url,
            "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_API_HOST": "127.0.0.1",
            "PREFECT_SERVER_API_PORT": str(self.port),
            "NBS_PROJECT_DIR": str(self.project_dir),
            "COLUMNS": "250",  # CLI tables unabridged
        }
        env.pop("PREFECT_PROFILE", None)
        env.pop("PREFECT_SERVER_EPHEMERAL_ENABLED", None)
        return env

    def prefect(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """Run a ``prefect`` CLI command for this site (from the project folder)."""
        return subprocess.run(
            [sys.executable, "-m", "prefect", *args],
            env=self.env(),
            cwd=self.project_dir,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def _spawn(site: PrefectSite, args: list[str], log: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "prefect", *args],
            env=site.env(),
            cwd=site.project_dir,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as a whole
        )


def start_server(site: PrefectSite, timeout: float = 120) -> subprocess.Popen[bytes]:
    """``prefect server start`` on loopback; returns once ``/api/health`` answers."""
    site.home.mkdir(parents=True, exist_ok=True)
    proc = _spawn(
        site,
        ["server", "start", "--host", "127.0.0.1", "--port", str(site.port)],
        site.home / "server.log",
    )
    if wait_until_answers(proc, site.api_url + "/health", timeout, poll=0.5):
        return proc
    if proc.poll() is not None:
        raise RuntimeError(f"prefect server exited; see {site.home / 'server.log'}")
    stop(proc)
    raise RuntimeError(f"prefect server not healthy after {timeout:.0f} s")


def deploy(site: PrefectSite) -> list[str]:
    """Create the process work pool (if new) and deploy everything in ``prefect.yaml``
    (run from ``project_dir``, where its ``flows/...`` entrypoints resolve)."""
    pools = site.prefect("work-pool", "ls")
    if POOL not in pools.stdout:
        created = site.prefect("work-pool", "create", POOL, "--type", "process")
        if created.returncode != 0:
            raise RuntimeError(f"work pool: {created.stdout}{created.stderr}")
    done = site.prefect("--no-prompt", "deploy", "--all", "--prefect-file", str(site.prefect_file))
    if done.returncode != 0:
        raise RuntimeError(f"prefect deploy failed: {done.stdout}{done.stderr}")
    listed = site.prefect("deployment", "ls")
    return [line for line in listed.stdout.splitlines() if "/" in line]


def start_worker(site: PrefectSite) -> subprocess.Popen[bytes]:
    """``prefect worker start`` on the lab's pool."""
    return _spawn(site, ["worker", "start", "--pool", POOL], site.home / "worker.log")


def stop(proc: subprocess.Popen[bytes], grace: float = 10) -> None:
    """Stop a process group: SIGTERM, again (a worker ignores the first), then SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace / 2)


@contextlib.contextmanager
def running_site(site: PrefectSite) -> Iterator[PrefectSite]:
    """Server, deployments and worker for the length of the block; all stopped after."""
    server = start_server(site)
    worker = None
    try:
        deploy(site)
        worker = start_worker(site)
        yield site
    finally:
        if worker is not None:
            stop(worker)
        stop(server)
