"""Statistics read from the rollups (and the small incident tables). Refresh the rollups first."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from sqlalchemy import Integer, Subquery, func, literal, select, union_all
from sqlalchemy.orm import Session

from callcenter.incidents.followup import FollowUp
from callcenter.incidents.models import Agency, Assignment, Incident
from callcenter.localtime import day_key, days, key_day
from callcenter.models import Classification, Outcome
from callcenter.settings import Settings
from callcenter.stats import figures, top_callers
from callcenter.stats.models import (
    DailyAnswer,
    DailyDetail,
    DailyTimes,
    DailyWait,
    HourlyCount,
    MonthlyAnswer,
    MonthlyDetail,
    MonthlyWait,
)
from callcenter.stats.rollup_days import TIMES_OUTCOMES
from callcenter.stats.schemas import (
    AgencyFollowUp,
    AnswerTimes,
    AnswerTimesReport,
    CallerFigures,
    Callers,
    Emergencies,
    OperatorFigures,
    Operators,
    Period,
    RegionFigures,
    Regions,
    Summary,
    TimePoint,
    TimeSeries,
)

CLASSES = [c.value for c in Classification]
LIVE = {o.value for o in Outcome if not o.is_final}
UNSPECIFIED = "unspecified"
OVERFLOWED = "overflowed"  # beside the outcomes: calls whose queue round timed out
# The counts of stats_times_daily: every call, the outcomes of answer times, the overflowed.
COUNTED = ("calls", *TIMES_OUTCOMES, OVERFLOWED)
DETAIL_COLUMNS = (
    "outcome",
    "classification",
    "reason",
    "operator",
    "calls",
    "talk_count",
    "talk_sum",
    "overflowed",
)


def period(first: date, last: date, settings: Settings) -> Period:
    return Period(from_=first, to=last, timezone=settings.timezone)


def _day_range(first: date, last: date) -> tuple[int, int]:
    return day_key(first), day_key(last)


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def _split(first: date, last: date) -> tuple[tuple[int, int] | None, list[tuple[date, date]]]:
    """A range as its whole months (first and last YYYYMM, or None) and the spans of days
    before and after them.

    >>> _split(date(2025, 5, 15), date(2025, 8, 10))
    ((202506, 202507), [(datetime.date(2025, 5, 15), datetime.date(2025, 5, 31)), \
(datetime.date(2025, 8, 1), datetime.date(2025, 8, 10))])
    >>> _split(date(2025, 6, 2), date(2025, 6, 30))
    (None, [(datetime.date(2025, 6, 2), datetime.date(2025, 6, 30))])
    """
    months_from = first if first.day == 1 else _next_month(first)
    months_to = _month_start(last + timedelta(days=1))  # the day after the last whole month
    if months_from >= months_to:
        return None, [(first, last)]
    spans = []
    if first < months_from:
        spans.append((first, months_from - timedelta(days=1)))
    if months_to <= last:
        spans.append((months_to, last))
    months = (day_key(months_from) // 100, day_key(months_to - timedelta(days=1)) // 100)
    return months, spans


def _detail(first: date, last: date) -> Subquery:
    """The detail rows of a range: its whole months from ``stats_monthly``, the days before and
    after them from ``stats_daily`` (a year is some 1,800 rows instead of 38,000)."""
    months, spans = _split(first, last)
    parts = [
        select(*(getattr(DailyDetail, c) for c in DETAIL_COLUMNS)).where(
            DailyDetail.local_day.between(day_key(a), day_key(b))
        )
        for a, b in spans
    ]
    if months is not None:
        columns = (getattr(MonthlyDetail, c) for c in DETAIL_COLUMNS)
        parts.insert(0, select(*columns).where(MonthlyDetail.month.between(*months)))
    return union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()


def emergencies(session: Session, first: date, last: date, emergency_calls: int) -> Emergencies:
    lo, hi = _day_range(first, last)
    with_incident = session.scalar(
        select(func.count()).select_from(Incident).where(Incident.call_local_day.between(lo, hi))
    )
    counts: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(FollowUp, 0))
    for agency_id, status, n in session.execute(
        select(Assignment.agency_id, Assignment.status, func.count())
        .where(Assignment.call_local_day.between(lo, hi), Assignment.is_primary.is_(True))
        .group_by(Assignment.agency_id, Assignment.status)
    ):
        counts[agency_id][status] = n
    by_agency = []
    for agency in session.scalars(select(Agency).order_by(Agency.id)):
        if not agency.active and agency.id not in counts:
            continue
        c = counts.get(agency.id, dict.fromkeys(FollowUp, 0))
        by_agency.append(
            AgencyFollowUp(
                code=agency.code,
                name=agency.name,
                kind=agency.kind,
                total=sum(c.values()),
                **{status.value: c[status] for status in FollowUp},
            )
        )
    assigned = sum(a.total for a in by_agency)
    resolved = sum(a.resolved for a in by_agency)
    not_followed = sum(a.not_followed_up for a in by_agency)
    return Emergencies(
        total=emergency_calls,
        with_incident=with_incident or 0,
        without_agency=(with_incident or 0) - assigned,
        resolved=resolved,
        not_followed_up=not_followed,
        in_progress=assigned - resolved - not_followed,
        by_agency=by_agency,
    )


def summary(session: Session, first: date, last: date, settings: Settings) -> Summary:
    detail = _detail(first, last).c
    outcomes: dict[str, int] = defaultdict(int)
    classes: dict[str, int] = dict.fromkeys([*CLASSES, "unclassified"], 0)
    reasons: dict[str, int] = defaultdict(int)
    nested: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    overflowed = 0
    for outcome, classification, reason, calls, overflows in session.execute(
        select(
            detail.outcome,
            detail.classification,
            detail.reason,
            func.sum(detail.calls),
            func.sum(detail.overflowed),
        ).group_by(detail.outcome, detail.classification, detail.reason)
    ):
        outcomes[outcome] += calls
        overflowed += overflows or 0
        classes[classification or "unclassified"] += calls
        if reason:
            reasons[reason] += calls
            nested[classification or "unclassified"][reason] += calls
    total = sum(outcomes.values())
    return Summary(
        period=period(first, last, settings),
        total=total,
        answered=outcomes[Outcome.answered],
        abandoned_in_ivr=outcomes[Outcome.abandoned_in_ivr],
        abandoned_in_queue=outcomes[Outcome.abandoned_in_queue],
        unanswered=outcomes[Outcome.unanswered],
        failed=outcomes[Outcome.failed],
        in_progress=sum(n for o, n in outcomes.items() if o in LIVE),
        overflowed=overflowed,
        by_classification=classes,
        by_reason=dict(sorted(reasons.items())),
        by_classification_reason={c: dict(sorted(r.items())) for c, r in nested.items()},
        prank_share=figures.share(classes[Classification.prank], total),
        emergencies=emergencies(session, first, last, classes[Classification.emergency]),
    )


def _answer_times(
    day: date | None,
    counts: dict[str, int],
    waits: figures.WaitFigures,
    answers: figures.WaitFigures,
) -> AnswerTimes:
    """``counts``: every call ("calls"), those of each of TIMES_OUTCOMES, the overflowed."""
    total = counts["calls"]
    abandoned = counts[Outcome.abandoned_in_ivr] + counts[Outcome.abandoned_in_queue]
    return AnswerTimes(
        date=day,
        total=total,
        answered=counts[Outcome.answered],
        abandoned_in_ivr=counts[Outcome.abandoned_in_ivr],
        abandoned_in_queue=counts[Outcome.abandoned_in_queue],
        unanswered=counts[Outcome.unanswered],
        abandon_rate=figures.share(abandoned, total),
        overflowed=counts[OVERFLOWED],
        answer_p50=answers.wait_p50,
        answer_p90=answers.wait_p90,
        answer_p95=answers.wait_p95,
        answer_max=answers.wait_max,
        within_10s=answers.within_10s,
        within_15s=answers.within_15s,
        within_20s=answers.within_20s,
        wait_p50=waits.wait_p50,
        wait_p90=waits.wait_p90,
        wait_p95=waits.wait_p95,
        wait_max=waits.wait_max,
    )


def answer_times(
    session: Session, first: date, last: date, settings: Settings
) -> AnswerTimesReport:
    """Each day's figures from its row of ``stats_times_daily``, the range's from the merged
    histograms (whole months from the monthly ones, summed in SQL): a year reads 365 day rows
    and sums some 1,500 histogram rows, where it read 38,000 detail rows and 28,000 daily
    histogram rows (1M calls)."""
    lo, hi = _day_range(first, last)
    per_day = _day_times(session, lo, hi)
    all_counts = dict.fromkeys(COUNTED, 0)
    for counts, _, _ in per_day.values():
        for name, n in counts.items():
            all_counts[name] += n
    nothing = (dict.fromkeys(COUNTED, 0), figures.wait_figures({}), figures.wait_figures({}))
    return AnswerTimesReport(
        period=period(first, last, settings),
        overall=_answer_times(
            None,
            all_counts,
            figures.wait_figures(merged_histogram(session, "wait", first, last)),
            figures.wait_figures(merged_histogram(session, "answer", first, last)),
        ),
        days=[_answer_times(d, *per_day.get(day_key(d), nothing)) for d in days(first, last)],
    )


def merged_histogram(session: Session, kind: str, first: date, last: date) -> dict[int, int]:
    """Whole seconds -> answered calls over a range, for ``kind`` "wait" or "answer", summed in
    SQL: its whole months from the monthly histogram, the days around them from the daily one.
    """
    daily, monthly = (DailyWait, MonthlyWait) if kind == "wait" else (DailyAnswer, MonthlyAnswer)
    seconds = f"{kind}_seconds"
    months, spans = _split(first, last)
    parts = [
        select(getattr(daily, seconds).label("seconds"), daily.calls).where(
            daily.local_day.between(day_key(a), day_key(b))
        )
        for a, b in spans
    ]
    if months is not None:
        parts.append(
            select(getattr(monthly, seconds).label("seconds"), monthly.calls).where(
                monthly.month.between(*months)
            )
        )
    rows = union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()
    return {
        int(value): int(calls)
        for value, calls in session.execute(
            select(rows.c.seconds, func.sum(rows.c.calls)).group_by(rows.c.seconds)
        )
    }


def _day_times(
    session: Session, lo: int, hi: int
) -> dict[int, tuple[dict[str, int], figures.WaitFigures, figures.WaitFigures]]:
    """Per local day: its counts, and its wait and answer figures, as written with its
    histograms."""
    columns = ("count", "p50", "p90", "p95", "max", "within_10", "within_15", "within_20")
    found = {}
    # Core rows, not the ORM's.
    for day, *values in session.connection().execute(
        select(
            DailyTimes.local_day,
            *(getattr(DailyTimes, c) for c in COUNTED),
            *(getattr(DailyTimes, f"{kind}_{c}") for kind in ("wait", "answer") for c in columns),
        ).where(DailyTimes.local_day.between(lo, hi))
    ):
        counts = dict(zip(COUNTED, values, strict=False))
        wait, answer = (
            figures.HistogramFigures(
                count=part[0],
                p50=part[1],
                p90=part[2],
                p95=part[3],
                max=part[4],
                within=tuple(part[5:]),
            ).shares()
            for part in (values[len(COUNTED) : -8], values[-8:])
        )
        found[day] = (counts, wait, answer)
    return found


def _bucket_label(bucket: int, interval: str) -> str:
    if interval == "month":
        return f"{bucket // 100:04d}-{bucket % 100:02d}"
    if interval == "day":
        return key_day(bucket).isoformat()
    return f"{key_day(bucket // 100).isoformat()}T{bucket % 100:02d}:00"


def _buckets(first: date, last: date, interval: str) -> list[int]:
    keys = [day_key(d) for d in days(first, last)]
    if interval == "day":
        return keys
    if interval == "month":
        return sorted({k // 100 for k in keys})
    return [k * 100 + h for k in keys for h in range(24)]


def timeseries(
    session: Session, first: date, last: date, interval: str, settings: Settings
) -> TimeSeries:
    lo, hi = _day_range(first, last)
    columns = [
        HourlyCount.total,
        HourlyCount.emergency,
        HourlyCount.prank,
        HourlyCount.non_emergency,
        HourlyCount.unclassified,
    ]
    in_range = HourlyCount.local_hour.between(lo * 100, hi * 100 + 99)
    if interval == "hour":
        query = select(HourlyCount.local_hour, *columns).where(in_range)
    else:
        divisor = 100 if interval == "day" else 10000
        bucket = (HourlyCount.local_hour // literal(divisor, Integer)).label("bucket")
        query = select(bucket, *(func.sum(c) for c in columns)).where(in_range).group_by(bucket)
    counts = {int(key): row for key, *row in session.execute(query)}
    empty = (0, 0, 0, 0, 0)
    points = []
    for key in _buckets(first, last, interval):
        total, emergency, prank, non_emergency, unclassified = counts.get(key, empty)
        # Built without validation: the figures come from integer columns.
        points.append(
            TimePoint.model_construct(
                bucket=_bucket_label(key, interval),
                total=int(total),
                emergency=int(emergency),
                prank=int(prank),
                non_emergency=int(non_emergency),
                unclassified=int(unclassified),
            )
        )
    return TimeSeries(period=period(first, last, settings), interval=interval, points=points)


def calls_per_hour_of_day(session: Session, first: date, last: date) -> list[int]:
    """Calls in each local hour of the day (00 to 23), summed over the range: 24 rows from SQL
    rather than an hourly series of every day (3,672 points over five months) summed here."""
    lo, hi = _day_range(first, last)
    hour = (HourlyCount.local_hour % literal(100, Integer)).label("hour")
    per_hour = [0] * 24
    for h, total in session.execute(
        select(hour, func.sum(HourlyCount.total))
        .where(HourlyCount.local_hour.between(lo * 100, hi * 100 + 99))
        .group_by(hour)
    ):
        per_hour[int(h)] = int(total)
    return per_hour


def operators(session: Session, first: date, last: date, settings: Settings) -> Operators:
    detail = _detail(first, last).c
    rows: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for operator, outcome, classification, calls, talk_count, talk_sum in session.execute(
        select(
            detail.operator,
            detail.outcome,
            detail.classification,
            func.sum(detail.calls),
            func.sum(detail.talk_count),
            func.sum(detail.talk_sum),
        )
        .where(detail.operator != "")
        .group_by(detail.operator, detail.outcome, detail.classification)
    ):
        row = rows[operator]
        if outcome == Outcome.answered:
            row["answered"] += calls
        row["talk_count"] += talk_count
        row["talk_sum"] += int(talk_sum)
        if classification:
            row["tagged"] += calls
            row[classification] += calls
    return Operators(
        period=period(first, last, settings),
        operators=[
            OperatorFigures(
                operator=name,
                answered=r["answered"],
                mean_talk_seconds=None
                if not r["talk_count"]
                else round(r["talk_sum"] / r["talk_count"], 1),
                tagged=r["tagged"],
                emergency=r["emergency"],
                prank=r["prank"],
                non_emergency=r["non_emergency"],
            )
            for name, r in sorted(rows.items())
        ],
    )


def callers(
    session: Session,
    first: date,
    last: date,
    settings: Settings,
    *,
    limit: int,
    min_pranks: int,
    masked: bool,
) -> Callers:
    rows = top_callers.top_prank_callers(session, first, last, limit=limit, min_pranks=min_pranks)
    return Callers(
        period=period(first, last, settings),
        callers=[
            CallerFigures(
                caller=figures.mask_number(number) if masked else number,
                masked=masked,
                pranks=n,
            )
            for number, n in rows
        ],
    )


def regions(session: Session, first: date, last: date, settings: Settings) -> Regions:
    lo, hi = _day_range(first, last)
    found = dict(
        session.execute(
            select(Incident.district, func.count())
            .where(Incident.call_local_day.between(lo, hi))
            .group_by(Incident.district)
        ).all()
    )
    names = [d.name for d in settings.districts]
    names += sorted(n for n in found if n is not None and n not in names)
    rows = [RegionFigures(district=n, emergencies=found.get(n, 0)) for n in names]
    if None in found:
        rows.append(RegionFigures(district=UNSPECIFIED, emergencies=found[None]))
    rows.sort(key=lambda r: -r.emergencies)
    return Regions(period=period(first, last, settings), regions=rows)
