"""Start ``nbs`` commands as child processes: ``nbs serve`` for the browser tests and the
README's screenshots (laboratories run it under their service manager), and wait until a
local service answers (``wait_until_answers``, also for Prefect's).

This module imports nothing of ``nbs``: the command line's modules reach it (through the
Prefect integration), so it must not reach back to them."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def command(*args: str) -> list[str]:
    """``nbs ARGS`` as a child process of this interpreter runs it (whatever is on PATH),
    through the console script's own entry point (``nbs.console.main``)."""
    return [sys.executable, "-c", "from nbs.console import main; main()", *args]


def free_port() -> int:
    """A TCP port free on the loopback address just now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_answers(
    proc: subprocess.Popen[bytes], url: str, timeout: float, poll: float = 0.1
) -> bool:
    """Poll ``url`` until it answers 200 (True), the process exits or ``timeout`` seconds
    pass (False)."""
    import httpx  # here, not at import: the console script imports this module

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        time.sleep(poll)
    return False


@dataclass(frozen=True)
class Served:
    """A running ``nbs serve``: its base URL and process id."""

    url: str
    pid: int


@contextlib.contextmanager
def serving(
    db: Path,
    secret: str,
    port: int | None = None,
    options: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> Iterator[Served]:
    """``nbs serve --db db [options]`` on loopback; yields it and stops it on exit."""
    port = port or free_port()
    serve = ["serve", "--db", str(db), "--port", str(port), *options]
    proc = subprocess.Popen(
        command(*serve),
        env={**os.environ, "NBS_WEB_SECRET": secret, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_until_answers(proc, url + "/login", timeout=60):
            proc.kill()
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise RuntimeError(f"nbs serve did not start: {out}")
        yield Served(url, proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextlib.contextmanager
def running_server(db: Path, secret: str, port: int | None = None) -> Iterator[str]:
    """``nbs serve --db db`` on loopback; yields its base URL and stops it on exit."""
    with serving(db, secret, port) as served:
        yield served.url
