"""Reconciliation runs for operators, behind the admin token like the rest of `/admin`:

    GET /admin/recon/runs?day=&account=&status=&limit=&starting_after=
        runs newest first (`{"data": [...], "has_more"}`), `starting_after` a run's id
    GET /admin/recon/runs/{id}?lines=all|matched|fixed|needs_review
        the run with its discrepancies (and, when asked, up to 1000 of its lines, in
        `statement_lines`; `lines` is their number)

Read from the record (router.record.recon); a record that cannot answer is a 503.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from router.api.admin import authorize
from router.api.admin_ledger import RecordError
from router.api.payments import query_params
from router.errors import InvalidRequest, NotFound
from router.models import Cursor, Limit
from router.record import Record
from router.record.connect import RecordUnavailable
from router.record.recon_reads import list_runs, read_run


class RunsQuery(BaseModel):
    """Query parameters of `GET /admin/recon/runs`."""

    model_config = ConfigDict(extra="forbid")

    day: date | None = None
    account: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    status: Literal["running", "done", "failed"] | None = None
    limit: Limit = 10
    starting_after: Cursor | None = None


class RunQuery(BaseModel):
    """Query parameters of `GET /admin/recon/runs/{id}`."""

    model_config = ConfigDict(extra="forbid")

    lines: Literal["all", "matched", "fixed", "needs_review"] | None = None


def _unavailable(exc: RecordUnavailable) -> RecordError:
    return RecordError("record_unavailable", f"The record cannot be read: {exc}", retry_after=1)


def add_routes(app: web.Application, record: web.AppKey[Record]) -> None:
    """Register the reconciliation admin routes, reading the record under `record`."""

    async def runs(request: web.Request) -> web.Response:
        authorize(request)
        query = query_params(request, RunsQuery)
        try:
            page = await list_runs(
                request.app[record].engine,
                day=query.day.isoformat() if query.day else None,
                account=query.account,
                status=query.status,
                limit=query.limit,
                starting_after=query.starting_after,
            )
        except RecordUnavailable as exc:
            raise _unavailable(exc) from None
        except LookupError:
            raise InvalidRequest(
                "resource_missing",
                f"starting_after: no such run {query.starting_after!r}",
                param="starting_after",
            ) from None
        return web.json_response({"data": page.runs, "has_more": page.has_more})

    async def run(request: web.Request) -> web.Response:
        authorize(request)
        query = query_params(request, RunQuery)
        rid = request.match_info["id"]
        try:
            found: dict[str, Any] | None = await read_run(
                request.app[record].engine, rid, lines=query.lines
            )
        except RecordUnavailable as exc:
            raise _unavailable(exc) from None
        if found is None:
            raise NotFound("reconciliation run", rid)
        return web.json_response(found)

    app.router.add_get("/admin/recon/runs", runs)
    app.router.add_get("/admin/recon/runs/{id}", run)
