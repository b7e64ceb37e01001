"""Start ``nbs serve`` as its own process and wait until it answers (for the browser tests
and the README's screenshots; laboratories run ``nbs serve`` under their service manager)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port free on the loopback address just now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_server(db: Path, secret: str, port: int | None = None) -> Iterator[str]:
    """``nbs serve --db db`` on loopback; yields its base URL and stops it on exit."""
    port = port or free_port()
    serve = ["serve", "--db", str(db), "--port", str(port)]
    proc = subprocess.Popen(
        [sys.executable, "-c", "from nbs.cli import main; main()", *serve],
        env={**os.environ, "NBS_WEB_SECRET": secret},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url + "/login", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    raise RuntimeError(f"nbs serve did not start: {out}") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
