"""The review application: FastAPI, server-rendered Jinja2 pages, htmx for small updates.

Rules it keeps:

* every page but the login page needs a signed-in account; the role decides which pages
  (``ROLE_PAGES``), and officials never see a page with a name or an id;
* every form carries the session's CSRF token, checked on every POST;
* no DuckDB connection is kept between requests (a run's lock would otherwise stop the
  laboratory); a request that meets a run's lock retries briefly, then answers "a run is
  writing" with the coordinator's input kept in a form to send again, so nothing is lost;
* a change made on a stale view of a recall is refused, not merged.
"""

import datetime as dt
import hmac
import importlib.resources
import json
import os
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from nbs import storage, users
from nbs.followup import (
    STAGES,
    FollowUpConfig,
    RecallError,
    add_note,
    close_recall,
    list_recalls,
    reopen_recall,
    set_stage,
)
from nbs.web.charts import value_gauge

#: pages each role may open (by route name)
ROLE_PAGES: dict[str, tuple[str, ...]] = {
    "lab": ("runs", "worklist", "quarantine", "stats"),
    "coordinator": ("recalls", "recall", "runs", "stats"),
    "official": ("stats",),
}
NAV = (
    ("recalls", "Recalls"),
    ("worklist", "Retest worklist"),
    ("quarantine", "Quarantine"),
    ("runs", "Runs"),
    ("stats", "Statistics"),
)
BUSY_MESSAGE = "A run is writing, try again in a moment."


@dataclass(frozen=True)
class WebSettings:
    """Everything the application needs, passed in (nothing read at import time)."""

    db: Path
    secret_key: str
    followup: FollowUpConfig
    #: a run's commit takes about a second; wait that long, not the pipeline's budget
    retry: storage.RetryPolicy = field(
        default_factory=lambda: storage.RetryPolicy(attempts=6, first_delay_s=0.05, max_delay_s=0.6)
    )
    session_max_age_s: int = 8 * 3600
    https_only: bool = False


def load_secret_key(db: Path) -> str:
    """The session-signing key: ``NBS_WEB_SECRET``, else a random key kept beside the
    database (``FILE.web-secret``, owner-only), created on first use so sessions survive a
    restart."""
    if os.environ.get("NBS_WEB_SECRET"):
        return os.environ["NBS_WEB_SECRET"]
    path = db.with_name(db.name + ".web-secret")
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


class NotSignedIn(Exception):
    """No valid session."""


class Forbidden(Exception):
    """The signed-in role may not open this page."""


class BadCsrf(Exception):
    """A form without the session's CSRF token."""


class _RetryMiddleware:
    """Pure ASGI middleware: the request's DuckDB connections use the web retry policy
    (a context variable, copied into the worker thread of each sync endpoint)."""

    def __init__(self, app: Any, policy: storage.RetryPolicy) -> None:
        self.app, self.policy = app, policy

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        with storage.retry_policy(self.policy):
            await self.app(scope, receive, send)


def create_app(settings: WebSettings) -> FastAPI:
    """The application for one screening database."""
    db = settings.db
    app = FastAPI(title="NBS review", docs_url=None, redoc_url=None, openapi_url=None)
    web_files = importlib.resources.files("nbs.web")
    templates = Jinja2Templates(directory=str(web_files / "templates"))
    templates.env.filters["when"] = _when
    app.mount("/static", StaticFiles(directory=str(web_files / "static")), name="static")
    app.add_middleware(_RetryMiddleware, policy=settings.retry)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie="nbs_session",
        max_age=settings.session_max_age_s,
        same_site="strict",
        https_only=settings.https_only,
    )

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    # -- helpers ---------------------------------------------------------------------

    def csrf_token(request: Request) -> str:
        token = request.session.get("csrf")
        if not token:
            token = secrets.token_urlsafe(32)
            request.session["csrf"] = token
        return str(token)

    def check_csrf(request: Request, sent: str) -> None:
        expected = request.session.get("csrf")
        if not expected or not hmac.compare_digest(str(expected), sent):
            raise BadCsrf()

    def render(
        request: Request,
        template: str,
        user: users.User | None,
        status_code: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        pages = ROLE_PAGES.get(user.role, ()) if user else ()
        context.update(
            user=user,
            nav=[(name, label) for name, label in NAV if name in pages],
            csrf=csrf_token(request),
            flash=request.session.pop("flash", None),
        )
        return templates.TemplateResponse(request, template, context, status_code=status_code)

    def signed_in(request: Request) -> users.User:
        name = request.session.get("user")
        if not name:
            raise NotSignedIn()
        try:
            role = users.active_role(db, str(name))
        except storage.DatabaseBusy:
            # the signed session stands in while a run writes, so that a coordinator's
            # POST reaches its handler, which keeps the input for a resend
            role = str(request.session.get("role", ""))
        if role is None:  # disabled or removed since sign-in
            request.session.clear()
            raise NotSignedIn()
        return users.User(str(name), role)

    def page(name: str) -> Any:
        def dependency(request: Request) -> users.User:
            user = signed_in(request)
            if name not in ROLE_PAGES.get(user.role, ()):
                raise Forbidden()
            return user

        return Depends(dependency)

    def busy(
        request: Request, user: users.User | None, resend: dict[str, str] | None = None
    ) -> HTMLResponse:
        """503 page; a POST's fields are kept in a form to send again."""
        return render(
            request,
            "busy.html",
            user,
            status_code=503,
            message=BUSY_MESSAGE,
            resend=resend,
            action=request.url.path,
            retry_url=str(request.url),
        )

    # -- errors ----------------------------------------------------------------------

    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        if request.method == "GET":
            target = "/login?" + urlencode({"next": request.url.path})
            return RedirectResponse(target, status_code=303)
        return HTMLResponse("Sign in first.", status_code=401)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        return render(request, "forbidden.html", _session_user(request), status_code=403)

    @app.exception_handler(BadCsrf)
    async def bad_csrf(request: Request, exc: BadCsrf) -> Response:
        return HTMLResponse(
            "The form had expired or did not come from this application; reload the page.",
            status_code=403,
        )

    @app.exception_handler(storage.DatabaseBusy)
    async def database_busy(request: Request, exc: storage.DatabaseBusy) -> Response:
        return busy(request, _session_user(request))

    # -- sign in and out -------------------------------------------------------------

    @app.get("/login", name="login")
    def login_form(request: Request, next: str = "/") -> HTMLResponse:
        return render(request, "login.html", None, next=_safe_next(next), error=None)

    @app.post("/login")
    def login(
        request: Request,
        username: Annotated[str, Form()],
        password: Annotated[str, Form()],
        csrf_token: Annotated[str, Form()] = "",
        next: Annotated[str, Form()] = "/",
    ) -> Response:
        check_csrf(request, csrf_token)
        user = users.authenticate(db, username.strip(), password)
        if user is None:
            return render(
                request,
                "login.html",
                None,
                status_code=401,
                next=_safe_next(next),
                error="Unknown user name or wrong password.",
            )
        request.session.clear()  # a fresh session (and CSRF token) after sign-in
        request.session.update(user=user.username, role=user.role)
        return RedirectResponse(_safe_next(next), status_code=303)

    @app.post("/logout")
    def logout(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
        check_csrf(request, csrf_token)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    @app.get("/")
    def home(request: Request) -> Response:
        user = signed_in(request)
        first = ROLE_PAGES.get(user.role, ("stats",))[0]
        return RedirectResponse(app.url_path_for(first), status_code=303)

    # -- coordinators ----------------------------------------------------------------

    @app.get("/recalls", name="recalls")
    def recalls(
        request: Request,
        user: Annotated[users.User, page("recalls")],
        status: str = "open",
        condition: str = "",
        urgency: str = "",
        overdue: str = "",
    ) -> HTMLResponse:
        frame = list_recalls(
            db,
            settings.followup,
            status=status or None,
            condition=condition or None,
            urgency=urgency or None,
            overdue=overdue == "1",
        )
        conditions = storage.query(
            db, "SELECT DISTINCT condition FROM recall_list WHERE condition IS NOT NULL ORDER BY 1"
        )["condition"].to_list()
        filters = {"status": status, "condition": condition, "urgency": urgency, "overdue": overdue}
        template = "_recall_table.html" if _is_htmx_fragment(request) else "recalls.html"
        return render(
            request,
            template,
            user,
            rows=frame.rows(named=True),
            conditions=conditions,
            filters=filters,
        )

    def recall_page(
        request: Request,
        user: users.User,
        recall_id: str,
        error: str | None = None,
        draft: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> HTMLResponse:
        row = storage.recall(db, recall_id)
        if row is None:
            return render(request, "missing.html", user, status_code=404, what=recall_id)
        specimen = str(row["specimen_id"])
        card = storage.query(
            db,
            "SELECT specimen_id, baby_id, birth_at, collected_at, received_at, sex, "
            "birth_weight_g, gestational_age_weeks, transfusion, parenteral_nutrition, "
            "consent_cf, specimen_quality, submitter, last_transfusion_at FROM specimens "
            "WHERE specimen_id = ?",
            [specimen],
        ).rows(named=True)
        condition = row["condition"]
        where = "" if condition is None else "AND condition = ?"
        params: list[object] = [specimen] if condition is None else [specimen, condition]
        calls = storage.query(
            db,
            f"SELECT condition, call, urgency, basis, reason, rule_version, explanation, "
            f"evaluated_at FROM screening_calls WHERE specimen_id = ? {where} ORDER BY condition",
            params,
        ).rows(named=True)
        for call in calls:
            explained = json.loads(call["explanation"]) if call["explanation"] else {}
            criteria = explained.get("criteria") or []
            for criterion in criteria:
                criterion["gauge"] = value_gauge(
                    criterion.get("value"), criterion.get("limits"), str(criterion["criterion"])
                )
            call["criteria"] = criteria
            call["second_tier"] = explained.get("second_tier")
        results = storage.card_results(db, specimen).rows(named=True)
        warnings = storage.card_warnings(db, specimen)
        history = storage.recall_events(db, recall_id).rows(named=True)
        stage = str(row["stage"])
        later = [s for s in STAGES[1:-1] if STAGES.index(s) > STAGES.index(stage)]
        if stage in ("sample_requested", "referred"):
            later = [s for s in ("sample_requested", "referred") if s != stage]
        return render(
            request,
            "recall.html",
            user,
            status_code=status_code,
            recall=row,
            card=card[0] if card else None,
            calls=calls,
            results=results,
            warnings=warnings,
            history=history,
            next_stages=later,
            outcomes=settings.followup.outcomes,
            error=error,
            draft=draft or {},
        )

    @app.get("/recalls/{recall_id}", name="recall")
    def recall(
        request: Request, recall_id: str, user: Annotated[users.User, page("recall")]
    ) -> HTMLResponse:
        return recall_page(request, user, recall_id)

    def act(
        request: Request,
        user: users.User,
        recall_id: str,
        form: dict[str, str],
        change: Callable[[], None],
        done: str,
    ) -> Response:
        """Apply one coordinator change; on a run's lock keep the input for a resend."""
        check_csrf(request, form.pop("csrf_token", ""))
        try:
            current = storage.recall(db, recall_id)
            expected = form.get("expected_stage")
            if current is not None and expected and current["stage"] != expected:
                raise storage.RecallChanged(
                    f"{recall_id} changed meanwhile (now {current['stage']}): your change was "
                    "not saved; check the history and send it again"
                )
            change()
        except storage.DatabaseBusy:
            return busy(request, user, resend={**form, "csrf_token": csrf_token(request)})
        except (RecallError, storage.RecallChanged) as exc:
            return recall_page(request, user, recall_id, str(exc), form, status_code=409)
        request.session["flash"] = done
        return RedirectResponse(f"/recalls/{quote(recall_id)}", status_code=303)

    @app.post("/recalls/{recall_id}/stage")
    def recall_stage(
        request: Request,
        recall_id: str,
        user: Annotated[users.User, page("recall")],
        stage: Annotated[str, Form()],
        expected_stage: Annotated[str, Form()] = "",
        note: Annotated[str, Form()] = "",
        csrf_token: Annotated[str, Form()] = "",
    ) -> Response:
        form = {"stage": stage, "expected_stage": expected_stage, "note": note}
        return act(
            request,
            user,
            recall_id,
            {**form, "csrf_token": csrf_token},
            lambda: set_stage(db, recall_id, stage, user.username, note.strip() or None),
            f"{recall_id}: {stage.replace('_', ' ')}",
        )

    @app.post("/recalls/{recall_id}/close")
    def recall_close(
        request: Request,
        recall_id: str,
        user: Annotated[users.User, page("recall")],
        outcome: Annotated[str, Form()],
        expected_stage: Annotated[str, Form()] = "",
        note: Annotated[str, Form()] = "",
        csrf_token: Annotated[str, Form()] = "",
    ) -> Response:
        form = {"outcome": outcome, "expected_stage": expected_stage, "note": note}
        return act(
            request,
            user,
            recall_id,
            {**form, "csrf_token": csrf_token},
            lambda: close_recall(
                db, recall_id, outcome, user.username, note.strip() or None, settings.followup
            ),
            f"{recall_id} closed: {outcome.replace('_', ' ')}",
        )

    @app.post("/recalls/{recall_id}/note")
    def recall_note(
        request: Request,
        recall_id: str,
        user: Annotated[users.User, page("recall")],
        note: Annotated[str, Form()],
        csrf_token: Annotated[str, Form()] = "",
    ) -> Response:
        def change() -> None:
            if not note.strip():
                raise RecallError("the note is empty")
            add_note(db, recall_id, note.strip(), user.username)

        return act(
            request,
            user,
            recall_id,
            {"note": note, "csrf_token": csrf_token},
            change,
            "note added",
        )

    @app.post("/recalls/{recall_id}/reopen")
    def recall_reopen(
        request: Request,
        recall_id: str,
        user: Annotated[users.User, page("recall")],
        reason: Annotated[str, Form()] = "",
        csrf_token: Annotated[str, Form()] = "",
    ) -> Response:
        return act(
            request,
            user,
            recall_id,
            {"reason": reason, "expected_stage": "closed", "csrf_token": csrf_token},
            lambda: reopen_recall(db, recall_id, reason, user.username),
            f"{recall_id} reopened",
        )

    # -- laboratory ------------------------------------------------------------------

    @app.get("/worklist", name="worklist")
    def worklist(
        request: Request, user: Annotated[users.User, page("worklist")], status: str = "open"
    ) -> HTMLResponse:
        where = "WHERE status = ?" if status else ""
        rows = storage.query(
            db,
            f"SELECT specimen_id, condition, priority, reason, created_at, status, done_at, "
            f"rule_version FROM retest_worklist {where} "
            f"ORDER BY status = 'open' DESC, priority = 'urgent' DESC, created_at, specimen_id",
            [status] if status else [],
        ).rows(named=True)
        return render(request, "worklist.html", user, rows=rows, status=status)

    @app.get("/quarantine", name="quarantine")
    def quarantine(request: Request, user: Annotated[users.User, page("quarantine")]) -> Response:
        rows = storage.query(
            db,
            "SELECT file_name, kind, row_number, column_name, value, reason, quarantined_at, "
            "run_id FROM quarantine ORDER BY quarantined_at DESC, file_name, row_number",
        ).rows(named=True)
        files = storage.query(
            db,
            "SELECT file_name, kind, ingested_at, error, archived_as FROM ingested_files "
            "WHERE status = 'unreadable' ORDER BY ingested_at DESC",
        ).rows(named=True)
        return render(request, "quarantine.html", user, rows=rows, files=files)

    @app.get("/runs", name="runs")
    def runs(request: Request, user: Annotated[users.User, page("runs")]) -> HTMLResponse:
        rows = storage.query(
            db,
            "SELECT run_id, run_seq, started_at, committed_at, engine, cutoff_versions, "
            "summary_json FROM runs ORDER BY run_seq DESC LIMIT 200",
        ).rows(named=True)
        for row in rows:
            summary = json.loads(row.pop("summary_json"))
            row.update(
                cards=summary.get("cards_evaluated", 0),
                quarantined=summary.get("quarantined_rows", 0),
                recalls=summary.get("new_recalls", 0),
                urgent=len(summary.get("urgent_recalls") or []),
                answered=summary.get("recalls_answered", 0),
                files=len(summary.get("files") or []),
            )
        return render(request, "runs.html", user, rows=rows)

    # -- officials (and everyone) ------------------------------------------------------

    @app.get("/stats", name="stats")
    def stats(request: Request, user: Annotated[users.User, page("stats")]) -> HTMLResponse:
        # aggregated counts only: no name, id or date of birth can appear on this page
        rows = storage.query(db, "SELECT * FROM yield_by_year ORDER BY year DESC, condition").rows(
            named=True
        )
        quality = storage.query(
            db,
            "SELECT year, indicator, value, unit, numerator, denominator "
            "FROM quality_indicators ORDER BY year DESC, seq",
        ).rows(named=True)
        return render(request, "stats.html", user, rows=rows, quality=quality)

    return app


def _session_user(request: Request) -> users.User | None:
    """Who the signed session says is signed in (not checked against the database: for
    error pages, and while a run holds the database)."""
    name = request.session.get("user")
    return users.User(str(name), str(request.session.get("role", ""))) if name else None


def _safe_next(target: str) -> str:
    """Only a local path may follow sign-in (no open redirect)."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


def _is_htmx_fragment(request: Request) -> bool:
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-Target") == "recall-table"
    )


def _when(value: object) -> str:
    """A timestamp as the lab reads it (minutes, no seconds)."""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return "" if value is None else str(value)
