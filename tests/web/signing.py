"""Signing in to a real ``nbs serve`` over HTTP, as the web tests do it."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import httpx


def csrf_token(html: str) -> str:
    """The form token of a page."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None
    return found[1]


@contextlib.contextmanager
def signed_in(
    url: str, name: str, password: str, address: str | None = None
) -> Iterator[httpx.Client]:
    """A client signed in as ``name`` (from ``address``, given as X-Forwarded-For, so
    that the sign-in guard counts each test apart)."""
    headers = {"X-Forwarded-For": address} if address else {}
    with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
        token = csrf_token(client.get("/login").text)
        answer = client.post(
            "/login", data={"username": name, "password": password, "csrf_token": token}
        )
        assert answer.status_code == 303, answer.text
        yield client
