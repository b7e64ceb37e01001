"""Shared fixtures and the test tiers. Prefect is kept offline and away from ~/.prefect; the
unit tier never starts a Prefect server (accidental use fails fast).

Tiers: ``./dev fast`` runs ``-m "not slow"`` (the unit tier, under a minute on two cores);
``./dev test`` runs everything. A test is ``slow`` when it uses a fixture of
``SLOW_FIXTURES``, lives in a folder of ``SLOW_FOLDERS``, is marked ``prefect``, or its
module or itself is marked ``slow`` (processes of ``nbs`` per test, long property searches
through whole runs, repeated end-to-end runs).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

_PREFECT_HOME = tempfile.mkdtemp(prefix="nbs-test-prefect-")

# a Prefect server, Debian's chromium, an `nbs serve` process
SLOW_FIXTURES = frozenset({"prefect_harness", "browser", "server"})
# a real Prefect server and worker, or a wheel built and installed into a new environment
SLOW_FOLDERS = frozenset({"integrations", "packaging"})
_TESTS = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        folder = item.path.relative_to(_TESTS).parts[0]
        fixtures = set(getattr(item, "fixturenames", ()))
        if (
            folder in SLOW_FOLDERS
            or fixtures & SLOW_FIXTURES
            or item.get_closest_marker("prefect") is not None
        ):
            item.add_marker(pytest.mark.slow)


def pytest_configure(config: pytest.Config) -> None:
    os.environ["PREFECT_HOME"] = _PREFECT_HOME
    os.environ["DO_NOT_TRACK"] = "1"
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "120"
    # the fast tier never starts a Prefect server: an accidental flow call fails at once
    # (the integration tier's harness points Prefect at its own server)
    os.environ["PREFECT_SERVER_EPHEMERAL_ENABLED"] = "false"
    os.environ.pop("PREFECT_API_URL", None)
    # the tests write their inbox files themselves: read them at once (see test_ingest)
    os.environ["NBS_INBOX_SETTLE_S"] = "0"
    os.environ.pop("PREFECT_PROFILE", None)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_PREFECT_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def config():  # type: ignore[no-untyped-def]
    from nbs.config import load_config

    return load_config()


@pytest.fixture
def sample_inbox(tmp_path: Path) -> Path:
    """A fresh copy of the committed sample inbox."""
    from data_samples import SAMPLE_INBOX

    inbox = tmp_path / "inbox"
    shutil.copytree(SAMPLE_INBOX, inbox)
    return inbox


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "db" / "nbs.duckdb"


def once_per_session(
    factory: pytest.TempPathFactory, name: str, build: Callable[[Path], Any]
) -> Any:
    """``build(folder)`` run once for the whole test session, also across xdist workers
    (they share the parent of their temporary folders): its JSON-able result, kept in
    ``folder``; the others wait for it under a file lock."""
    base = factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder, done = shared / name, shared / f"{name}.json"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            done.write_text(json.dumps(build(folder)))
    return json.loads(done.read_text())


@pytest.fixture(scope="session")
def screened_sample(tmp_path_factory: pytest.TempPathFactory, config) -> Path:  # type: ignore[no-untyped-def]
    """The committed sample inbox run once through the real pipeline (per session)."""
    from data_samples import SAMPLE_INBOX
    from nbs.run.steps import run_local

    def build(root: Path) -> str:
        shutil.copytree(SAMPLE_INBOX, root / "inbox")
        run_local(root / "inbox", root / "db" / "nbs.duckdb", config)
        return str(root / "db" / "nbs.duckdb")

    return Path(once_per_session(tmp_path_factory, "screened-sample", build))


@pytest.fixture
def screened_db(screened_sample: Path, db_path: Path) -> Path:
    """This test's own copy of the screened sample database (at ``db_path``)."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(screened_sample, db_path)
    return db_path


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One real temporary Prefect server for the whole session (integration tier)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def chromium_path() -> str:
    """Debian's chromium (``./dev test`` and ``.ci/run`` install it)."""
    found = os.environ.get("NBS_CHROMIUM") or shutil.which("chromium")
    if not found:
        pytest.fail("Debian's chromium is needed: apt-get install chromium (./dev test does it)")
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        yield b
        b.close()
