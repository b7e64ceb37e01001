"""The "Release" action of the review application, against a real ``nbs serve``: a lab
user signs a release with the password; a wrong password, a blocked card or a missing
acknowledgement release nothing; a coordinator is refused."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from nbs import store
from nbs.web.process import serving
from tests.release.conftest import COORDINATOR, LAB, PASSWORD
from tests.web import signing

pytestmark = pytest.mark.xdist_group("web")


@dataclass(frozen=True)
class Server:
    url: str
    db: Path


@pytest.fixture(scope="module")
def server(sample_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    db = tmp_path_factory.mktemp("release-web") / "nbs.duckdb"
    shutil.copy(sample_db, db)
    with serving(db, "test-secret-" + "r" * 32) as served:
        yield Server(served.url, db)


def signed_in(server: Server, name: str) -> contextlib.AbstractContextManager[httpx.Client]:
    return signing.signed_in(server.url, name, PASSWORD)


def _releases(db: Path, card: str) -> int:
    return int(
        store.query(db, "SELECT count(*) FROM releases WHERE specimen_id = ?", [card]).item()
    )


def test_a_lab_user_releases_a_card_with_the_password(server: Server) -> None:
    with signed_in(server, LAB) as c:
        page = c.get("/release")
        assert page.status_code == 200 and "S-PKU2" in page.text and "S-PKU3" not in page.text
        token = signing.csrf_token(page.text)
        wrong = c.post("/release/S-PKU2", data={"csrf_token": token, "password": "nope"})
        assert wrong.status_code == 303
        assert "Nothing was released" in c.get("/release").text
        assert _releases(server.db, "S-PKU2") == 0
        ok = c.post("/release/S-PKU2", data={"csrf_token": token, "password": PASSWORD})
        assert ok.status_code == 303
        assert "initial release 1 signed by lab.anna" in c.get("/release").text
        assert _releases(server.db, "S-PKU2") == 1
        assert "S-PKU2" in c.get("/release?show=released").text
        blocked = c.post("/release/S-PKU3", data={"csrf_token": token, "password": PASSWORD})
        assert blocked.status_code == 303
        assert "PKU pending" in c.get("/release?show=blocked").text
        # S-N01 has a quarantined row: released only once it is acknowledged
        c.post("/release/S-N01", data={"csrf_token": token, "password": PASSWORD})
        assert _releases(server.db, "S-N01") == 0
        c.post(
            "/release/S-N01",
            data={"csrf_token": token, "password": PASSWORD, "acknowledge": "yes"},
        )
        assert _releases(server.db, "S-N01") == 1
        bad_token = c.post("/release/S-PKU4", data={"csrf_token": "x", "password": PASSWORD})
        assert bad_token.status_code in (400, 403) and _releases(server.db, "S-PKU4") == 0


def test_a_coordinator_can_neither_see_nor_release(server: Server) -> None:
    with signed_in(server, COORDINATOR) as c:
        assert c.get("/release").status_code == 403
        token = signing.csrf_token(c.get("/recalls").text)
        refused = c.post("/release/S-PKU4", data={"csrf_token": token, "password": PASSWORD})
        assert refused.status_code == 403 and _releases(server.db, "S-PKU4") == 0
