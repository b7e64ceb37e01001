"""The wheel as a laboratory installs it: built from the source tree, installed with its
dependencies into a new virtual environment, and used from a folder outside the checkout:
``nbs demo`` runs and ``nbs prefect-up`` deploys and runs the daily screening from the
installed package (``prefect.yaml`` and the default configuration are package data)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from data_samples import SAMPLE_INBOX
from nbs import store
from nbs.web.process import free_port

ROOT = Path(__file__).resolve().parents[2]
#: the design card's packages: nothing else may land in site-packages
PACKAGES = {"nbs", "flows", "analytes", "cutoffs", "data_samples"}
#: what is not part of the source tree the wheel is built from
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*.egg-info", "build", "dist", ".*_cache", ".hypothesis"
)

pytestmark = pytest.mark.xdist_group("prefect-server")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built by its PEP 517 backend from a copy of the tree (a build
    in place would leave ``build/`` and ``*.egg-info`` in the checkout)."""
    base = tmp_path_factory.mktemp("wheel")
    source, out = base / "source", base / "dist"
    shutil.copytree(ROOT, source, symlinks=True, ignore=NOT_SOURCE)
    out.mkdir()
    built = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, setuptools.build_meta as b; print(b.build_wheel(sys.argv[1]))",
            str(out),
        ],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    return out / built.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment with the wheel and its declared dependencies."""
    env = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True, timeout=120)
    installed = subprocess.run(
        [str(env / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    return env


def _environment(home: Path) -> dict[str, str]:
    """The variables of a lab machine: no checkout on the path, Prefect offline."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PREFECT_"))}
    return {
        **env,
        "HOME": str(home),
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "COLUMNS": "200",
    }


def test_the_wheel_holds_the_design_cards_packages_and_their_data(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == PACKAGES
    # every file the packages read at run time (configuration, SQL, templates, samples)
    data = [
        str(path.relative_to(ROOT))
        for package in PACKAGES
        for path in (ROOT / package).rglob("*")
        if path.is_file() and path.suffix not in {".py", ".pyc"} and "__pycache__" not in path.parts
    ]
    assert len(data) > 50
    assert sorted(set(data) - set(names)) == []
    assert "nbs/integrations/prefect/prefect.yaml" in names


def test_the_installed_wheel_runs_the_demo_outside_the_checkout(venv: Path, tmp_path: Path) -> None:
    python, nbs = venv / "bin" / "python", venv / "bin" / "nbs"
    env = _environment(tmp_path)
    where = subprocess.run(
        [str(python), "-c", "import nbs, cutoffs; print(nbs.__file__, cutoffs.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(ROOT) not in where and str(venv) in where
    demo = subprocess.run(
        [str(nbs), "demo", "--dir", str(tmp_path / "demo")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    db = tmp_path / "demo" / "nbs.duckdb"
    assert store.recall_list(db, "open").height > 0
    assert "Database:" in demo.stdout


@pytest.fixture
def prefect_up(venv: Path, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """``nbs prefect-up`` of the installed wheel, running until the test ends; yields the
    API address and the environment to reach it."""
    port = free_port()
    home = tmp_path / "prefect-home"
    env = _environment(tmp_path)
    log = tmp_path / "prefect-up.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(venv / "bin" / "nbs"), "prefect-up", "--home", str(home), "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 300
        while "Prefect running" not in log.read_text(errors="replace"):
            assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(1)
        yield f"http://127.0.0.1:{port}/api", {**env, "PREFECT_HOME": str(home)}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert "stopped" in log.read_text(errors="replace")


def test_prefect_up_of_the_installed_wheel_deploys_and_runs_the_screening(
    venv: Path, prefect_up: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    api, env = prefect_up
    inbox, db = tmp_path / "inbox", tmp_path / "lab.duckdb"
    shutil.copytree(SAMPLE_INBOX, inbox)
    prefect = [str(venv / "bin" / "python"), "-m", "prefect"]
    env = {**env, "PREFECT_API_URL": api}
    listed = subprocess.run(
        [*prefect, "deployment", "ls"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    for name in ("daily-screening", "screening-on-demand", "yearly-report"):
        assert name in listed.stdout, listed.stdout + listed.stderr
    params = f'{{"inbox": "{inbox}", "db": "{db}", "cutoffs_dir": null}}'
    run = subprocess.run(
        [
            *prefect,
            "deployment",
            "run",
            "screening_run/daily-screening",
            "--params",
            params,
            "--watch",
            "--watch-timeout",
            "240",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0 and "Completed" in run.stdout, run.stdout + run.stderr
    assert store.query(db, "SELECT engine FROM runs")["engine"].to_list() == ["prefect"]
    assert store.recall_list(db, "open").height > 0
