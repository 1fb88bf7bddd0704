"""HTTP routes for calls and callers: parse, call the service, return a schema."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Response
from pydantic import AwareDatetime
from sqlalchemy import Connection, Row

from callcenter.api.auth import CurrentUser, TokenClaimsDep, admit
from callcenter.api.deps import MAX_INT, Id, SessionDep, SettingsDep, WriteThreadsDep
from callcenter.calls import callers, service
from callcenter.calls.privacy import summary_for
from callcenter.calls.schemas import (
    CallDetail,
    CallerOut,
    CallPage,
    CallSummary,
    ClassificationCounts,
    ClassificationFilter,
    ClassificationIn,
    IvrRunOut,
    NumberOut,
)
from callcenter.errors import InvalidInput
from callcenter.ivr.stats import run_of
from callcenter.models import Call, Outcome, Role

router = APIRouter(prefix="/api/v1/calls", tags=["calls"])
callers_router = APIRouter(prefix="/api/v1/callers", tags=["callers"])

Limit = Annotated[int, Query(ge=1, le=500, description="Page size.")]
Offset = Annotated[int, Query(ge=0, le=MAX_INT, description="How many matching calls to skip.")]


def etag(call: Call | Row[Any]) -> str:
    return f'"{call.version}"'


IF_MATCH_PATTERN = r'^\s*(\*|(W/)?"?[0-9]{1,18}"?(\s*,\s*(W/)?"?[0-9]{1,18}"?)*)\s*$'


def parse_if_match(value: str | None) -> list[int]:
    """The versions in an If-Match header: ``"3"``, ``W/"3"`` or ``3``; ``*`` means any."""
    if value is None or value.strip() == "*":
        return []
    versions = []
    for tag in value.split(","):
        text = tag.strip().removeprefix("W/").strip('"')
        if not text.isdigit() or len(text) > 18:
            raise InvalidInput("If-Match must hold the call's ETag, like '\"3\"' (or *)")
        versions.append(int(text))
    return versions


def in_utc(value: datetime | None, name: str) -> datetime | None:
    """The time in UTC; one that has none (0001-01-01T00:00+14:00) is refused, not a 500."""
    try:
        return value.astimezone(UTC) if value is not None else None
    except OverflowError:
        raise InvalidInput(
            f"`{name}` is outside the times the calls can have", field=name
        ) from None


@router.get("")
def list_calls(
    session: SessionDep,
    settings: SettingsDep,
    user: CurrentUser,
    started_from: Annotated[
        AwareDatetime | None,
        Query(alias="from", description="Calls started at or after this time (with a zone)."),
    ] = None,
    started_to: Annotated[
        AwareDatetime | None, Query(alias="to", description="Calls started before this time.")
    ] = None,
    outcome: Annotated[list[Outcome] | None, Query(description="Repeat for several.")] = None,
    classification: Annotated[
        list[ClassificationFilter] | None, Query(description="Repeat for several.")
    ] = None,
    caller: Annotated[
        str | None, Query(description="A caller number in any format (0812..., +62812..., ...).")
    ] = None,
    operator: Annotated[str | None, Query(description="The operator's queue member name.")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> CallPage:
    filters = service.CallFilters(
        started_from=in_utc(started_from, "from"),
        started_to=in_utc(started_to, "to"),
        outcomes=outcome or (),
        classifications=classification or (),
        caller=caller,
        operator=operator,
        region=settings.phone_region,
    )
    calls, total = service.list_calls(session, filters=filters, limit=limit, offset=offset)
    return CallPage(
        items=[summary_for(c, user.role) for c in calls],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/{call_id}")
def get_call(
    call_id: Id,
    session: SessionDep,
    _user: CurrentUser,
    response: Response,
    events: Annotated[
        bool, Query(description="Include the call's raw AMI events (about 200 a call).")
    ] = False,
) -> CallDetail:
    call = service.get_call(session, call_id=call_id, with_events=events)
    response.headers["ETag"] = etag(call)
    if events:
        detail = CallDetail.model_validate(call)
    else:
        # Without touching call.events, which would load them.
        fields = {
            name: getattr(call, name)
            for name in CallDetail.model_fields
            if name not in ("events", "ivr")
        }
        detail = CallDetail.model_validate(fields, from_attributes=True)
    run = run_of(session, pbx=call.pbx, uniqueid=call.uniqueid)
    if run is not None:
        detail.ivr = IvrRunOut.model_validate(run)
    return detail


@router.put(
    "/{call_id}/classification",
    responses={409: {"description": "The call changed since it was read (stale version)."}},
)
async def classify_call(
    call_id: Id,
    body: ClassificationIn,
    token: TokenClaimsDep,
    writes: WriteThreadsDep,
    settings: SettingsDep,
    response: Response,
    if_match: Annotated[
        str | None,
        Header(
            description='The ETag of the call as read, e.g. "3" (or *).',
            pattern=IF_MATCH_PATTERN,
        ),
    ] = None,
) -> CallSummary:
    """The operators' hot path: the whole unit of work (who asks, the change, the commit) runs
    in one go on a write thread, so a SQLite writer holds its lock only while its SQL runs."""
    expected = parse_if_match(if_match)
    if body.version is not None:
        expected.append(body.version)

    def classify(connection: Connection) -> Row[Any]:
        return service.classify_call(
            connection,
            call_id=call_id,
            user_id=token.user_id,
            admit=partial(admit, minimum=Role.operator, token=token),
            classification=body.classification,
            reason=body.reason,
            note=body.note,
            expected_versions=expected,
            allowed_reasons=settings.classification_reasons,
        )

    call = await writes.run(classify)
    response.headers["ETag"] = etag(call)
    return CallSummary.model_validate(call)


@callers_router.get("/{number}")
def get_caller(
    number: Annotated[str, Path(description="The caller number in any format, or the raw ID.")],
    session: SessionDep,
    settings: SettingsDep,
    user: CurrentUser,
    limit: Limit = 50,
    offset: Offset = 0,
) -> CallerOut:
    found = callers.caller_history(
        session, number=number, region=settings.phone_region, limit=limit, offset=offset
    )
    caller = found.caller
    tagged = caller.emergency_count + caller.prank_count + caller.non_emergency_count
    return CallerOut(
        number=NumberOut(
            raw=number,
            status=found.number.status,
            e164=found.number.e164,
            line_type=caller.line_type or found.number.line_type,
            region=caller.region or found.number.region,
        ),
        first_seen_at=caller.first_seen_at,
        last_seen_at=caller.last_seen_at,
        counts=ClassificationCounts(
            total=found.total_calls,
            emergency=caller.emergency_count,
            prank=caller.prank_count,
            non_emergency=caller.non_emergency_count,
            untagged=max(found.total_calls - tagged, 0),
        ),
        calls=CallPage(
            items=[summary_for(c, user.role) for c in found.calls],
            total=found.total_calls,
            limit=limit,
            offset=offset,
        ),
    )
