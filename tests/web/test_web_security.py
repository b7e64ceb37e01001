"""The review application under attack, against a real ``nbs serve`` process: a copied
cookie replayed after sign-out, password guessing, a flood of sign-ins, the cookie and
header settings. Each test signs in from its own client address (the server trusts
X-Forwarded-For from loopback, as from the laboratory's TLS proxy on the same machine)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import re
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from nbs import store
from nbs.cli import app as cli
from nbs.config import load_config
from nbs.run.steps import run_local
from nbs.web import users
from nbs.web.process import serving

pytestmark = pytest.mark.xdist_group("web")

ACCOUNTS = {
    "sam": ("coordinator", "coordinator-pw-s"),
    "gina": ("coordinator", "coordinator-pw-g"),
    "flo": ("coordinator", "coordinator-pw-f"),
    "ida": ("coordinator", "coordinator-pw-i"),
}
SECRET = "test-secret-" + "y" * 32


@dataclass(frozen=True)
class Server:
    url: str
    db: Path
    pid: int


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    from data_samples import SAMPLE_INBOX

    root = tmp_path_factory.mktemp("websec")
    inbox, db = root / "inbox", root / "nbs.duckdb"
    shutil.copytree(SAMPLE_INBOX, inbox)
    run_local(inbox, db, load_config())
    for name, (role, password) in ACCOUNTS.items():
        users.add_user(db, name, role, password, "test")
    with serving(db, SECRET) as served:
        yield Server(served.url, db, served.pid)


def _token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None
    return found[1]


def sign_in(page: Any, server: Server, name: str, password: str | None = None) -> Any:
    page.goto(server.url + "/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password or ACCOUNTS[name][1])
    page.click("form.login button[type=submit]")
    return page


def client(server: Server, address: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"X-Forwarded-For": address}, timeout=60)


def signed_in_client(server: Server, name: str, address: str) -> httpx.Client:
    c = client(server, address)
    token = _token(c.get("/login").text)
    answer = c.post(
        "/login", data={"username": name, "password": ACCOUNTS[name][1], "csrf_token": token}
    )
    assert answer.status_code == 303, answer.text
    return c


def _rid(db: Path, specimen: str, condition: str) -> str:
    return str(
        store.query(
            db,
            "SELECT recall_id FROM recall_list WHERE specimen_id = ? AND condition = ?",
            [specimen, condition],
        ).item()
    )


def test_sign_out_ends_the_session_for_every_copy_of_the_cookie(browser, server: Server) -> None:  # type: ignore[no-untyped-def]
    rid = _rid(server.db, "S-MCAD1", "MCAD")
    headers = {"X-Forwarded-For": "10.1.0.1"}
    mine = browser.new_context(extra_http_headers=headers)
    thief = browser.new_context(extra_http_headers={"X-Forwarded-For": "10.1.0.2"})
    try:
        page = mine.new_page()
        csp_errors: list[str] = []
        page.on(
            "console", lambda m: csp_errors.append(m.text) if "Security Policy" in m.text else None
        )
        sign_in(page, server, "sam").wait_for_selector("header .who")
        page.goto(f"{server.url}/recalls/{rid}")
        token = page.locator("#note-form input[name=csrf_token]").input_value()
        copied = mine.cookies()
        stolen = thief.new_page()
        thief.add_cookies(copied)
        stolen.goto(f"{server.url}/recalls/{rid}")  # the copy works while signed in
        assert stolen.url.endswith(f"/recalls/{rid}")

        page.click("header form.logout button")
        page.wait_for_url("**/login")
        stolen.goto(f"{server.url}/recalls/{rid}")  # replayed after sign-out: sign-in page
        assert "/login" in stolen.url and "S-MCAD1" not in stolen.content()
        posted = stolen.request.post(
            f"{server.url}/recalls/{rid}/note", form={"note": "forged", "csrf_token": token}
        )
        assert posted.status == 401
        assert csp_errors == []  # the pages (htmx included) work under the stricter CSP
    finally:
        mine.close()
        thief.close()
    assert store.recall_events(server.db, rid).height == 0
    ended = store.query(
        server.db, "SELECT end_reason FROM web_sessions WHERE username = 'sam'"
    ).item()
    assert ended == "signed_out"


def test_guessing_slows_down_locks_the_account_and_the_administrator_unlocks(
    browser, server: Server
) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(extra_http_headers={"X-Forwarded-For": "10.2.0.1"})
    try:
        page = context.new_page()
        for i in range(3):  # three free failures
            sign_in(page, server, "gina", f"wrong-password-{i}")
            assert page.inner_text("p.error") == "Unknown user name or wrong password."
        failures = "SELECT failures FROM login_guard WHERE username = 'gina'"
        assert store.query(server.db, failures).item() == 3
        # two more failures a moment ago (set here: the browser's own pace would race a
        # 2-second delay on a busy machine): the next attempt waits 8 s
        with store.connect(server.db) as con:
            con.execute(
                "UPDATE login_guard SET failures = 5, last_failure_at = ? WHERE username = ?",
                [dt.datetime.now(dt.UTC).replace(tzinfo=None), "gina"],
            )
        sign_in(page, server, "gina")  # even the right password waits now, unchecked
        message = page.inner_text("p.error")
        assert re.fullmatch(r"Too many failed sign-ins for this name: try again in \d s\.", message)

        # the rest of the way to the lock-out, as if each wait had been waited
        policy = users.ThrottlePolicy()
        later = store.utc_now()
        while users.check_sign_in(server.db, "gina", "wrong", policy, later).outcome != "locked":
            later = later.replace(year=later.year + 1)
        sign_in(page, server, "gina")
        assert "locked until the laboratory's administrator" in page.inner_text("p.error")

        unlocked = CliRunner().invoke(
            cli, ["users", "unlock", "gina", "--db", str(server.db), "--by", "admin"]
        )
        assert unlocked.exit_code == 0, unlocked.output
        sign_in(page, server, "gina").wait_for_selector("header .who")
    finally:
        context.close()
    audit = _audit(server.db, "10.2.0.1", expected=6)
    assert Counter(outcome for _, outcome, _ in audit) == {
        "wrong_password": 3,
        "throttled": 1,
        "locked": 1,
        "signed_in": 1,
    }
    assert {name for name, _, _ in audit} == {"gina"}
    unlock = store.query(
        server.db, "SELECT detail FROM login_attempts WHERE outcome = 'unlocked'"
    ).item()
    assert unlock == "by admin"


def test_a_change_sent_after_the_idle_timeout_waits_for_the_next_sign_in(
    browser, server: Server
) -> None:  # type: ignore[no-untyped-def]
    rid = _rid(server.db, "S-SMA1", "SMA")
    note = "mother called back, appointment on Thursday"
    with serving(server.db, SECRET, env={"NBS_SESSION_IDLE_MINUTES": "0.1"}) as quick:
        context = browser.new_context(extra_http_headers={"X-Forwarded-For": "10.5.0.1"})
        try:
            page = context.new_page()
            sign_in(page, Server(quick.url, server.db, quick.pid), "ida")
            page.wait_for_selector("header .who")
            page.goto(f"{quick.url}/recalls/{rid}")
            page.fill("#note-form input[name=note]", note)
            time.sleep(10)  # well past this server's 6-second idle timeout (a 1 s margin
            # was once too little on a loaded machine)
            page.click("#note-form button")
            page.wait_for_url("**/login?next=*")  # signed out: nothing saved...
            assert store.recall_events(server.db, rid).height == 0
            page.fill("input[name=username]", "ida")
            page.fill("input[name=password]", ACCOUNTS["ida"][1])
            page.click("form.login button[type=submit]")
            page.wait_for_url(f"**/recalls/{rid}")  # ...and the note is back in its form
            assert "signed out after a while" in page.inner_text("p.error")
            assert page.locator("#note-form input[name=note]").input_value() == note
            page.click("#note-form button")
            page.wait_for_selector("p.flash")
        finally:
            context.close()
    assert store.recall_events(server.db, rid)["note"].to_list() == [note]
    reasons = store.query(
        server.db, "SELECT end_reason FROM web_sessions WHERE username = 'ida' ORDER BY created_at"
    )["end_reason"].to_list()
    assert reasons[0] == "idle"


def _audit(db: Path, address: str, expected: int) -> list[tuple[Any, ...]]:
    """The sign-in attempts from ``address`` (written by the server about once a second)."""
    deadline = time.monotonic() + 10
    while True:
        rows = store.query(
            db,
            "SELECT username, outcome, attempt_at FROM login_attempts WHERE address = ? "
            "ORDER BY attempt_at, outcome",
            [address],
        ).rows()
        if len(rows) >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_a_flood_of_wrong_sign_ins_keeps_pages_answering_and_memory_bounded(
    server: Server,
) -> None:
    coordinator = signed_in_client(server, "flo", "10.3.0.1")
    assert coordinator.get("/recalls").status_code == 200
    baseline = _rss_mb(server.pid)
    peak, codes, page_times = [baseline], Counter[int](), []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            peak.append(_rss_mb(server.pid))
            time.sleep(0.02)

    def guess(i: int) -> None:
        with client(server, f"10.99.{i // 200}.{i % 200 + 1}") as c:
            name = "flo" if i % 6 == 0 else f"intruder{i}"
            token = _token(c.get("/login").text)
            answer = c.post(
                "/login", data={"username": name, "password": "wrong-pw", "csrf_token": token}
            )
            codes[answer.status_code] += 1

    watcher = threading.Thread(target=watch)
    watcher.start()
    flood = [threading.Thread(target=guess, args=(i,)) for i in range(120)]
    started = time.monotonic()
    for t in flood:
        t.start()
    for _ in range(5):
        t0 = time.monotonic()
        answer = coordinator.get("/recalls")
        page_times.append(time.monotonic() - t0)
        assert answer.status_code == 200 and "Recall list" in answer.text
    for t in flood:
        t.join()
    took = time.monotonic() - started
    stop.set()
    watcher.join()
    grew = max(peak) - baseline
    print(
        f"flood of 120: {took:.1f} s, answers {dict(codes)}, page {max(page_times):.2f} s "
        f"at worst, RSS {baseline:.0f} MB -> peak {max(peak):.0f} MB"
    )
    assert sum(codes.values()) == 120 and set(codes) <= {401, 403, 429, 503}
    assert codes[503] + codes[429] > 0  # the surplus was answered at once, not queued
    assert max(page_times) < 3.0, page_times
    assert grew < 400, f"RSS grew by {grew:.0f} MB"  # unbounded hashing: +1.9 GB
    assert took < 30
    recorded = store.query(
        server.db, "SELECT count(*) FROM login_attempts WHERE address LIKE '10.99.%'"
    )
    deadline = time.monotonic() + 10
    while recorded.item() < 120 and time.monotonic() < deadline:
        time.sleep(0.2)
        recorded = store.query(
            server.db, "SELECT count(*) FROM login_attempts WHERE address LIKE '10.99.%'"
        )
    assert recorded.item() == 120  # every attempt is in the audit trail


def test_security_headers_and_a_small_body_limit(server: Server) -> None:
    with client(server, "10.4.0.1") as c:
        answer = c.get("/login")
        csp = answer.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "base-uri 'none'" in csp and "form-action 'self'" in csp
        assert "camera=()" in answer.headers["Permissions-Policy"]
        assert answer.headers["Cross-Origin-Opener-Policy"] == "same-origin"
        assert "secure" not in answer.headers["set-cookie"].lower()  # plain http by default
        token = _token(answer.text)
        huge = c.post(
            "/login", data={"username": "sam", "password": "x" * 100_000, "csrf_token": token}
        )
        assert huge.status_code == 413


@pytest.mark.parametrize(
    ("options", "env"),
    [(["--secure-cookies"], {}), ([], {"NBS_SECURE_COOKIES": "1"})],
)
def test_the_session_cookie_is_secure_behind_the_tls_proxy(
    server: Server, monkeypatch: pytest.MonkeyPatch, options: list[str], env: dict[str, str]
) -> None:
    import uvicorn

    served: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.append(app))
    env = {**env, "NBS_SESSION_IDLE_MINUTES": "5", "NBS_WEB_SECRET": "z" * 40}
    result = CliRunner().invoke(cli, ["serve", "--db", str(server.db), *options], env=env)
    assert result.exit_code == 0, result.output
    app = served[0]
    assert app.state.web.settings.session_idle_minutes == 5

    async def sign_in_page() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://review.lab") as c:
            return await c.get("/login")

    # in a thread of its own: Playwright's event loop runs in this one (module fixture)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        answer = pool.submit(asyncio.run, sign_in_page()).result()
    cookie = answer.headers["set-cookie"].lower()
    assert "nbs_session=" in cookie and "; secure" in cookie and "samesite=strict" in cookie
