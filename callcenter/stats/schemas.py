"""Response bodies of the statistics API. Field names are those of the call export."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field


class Period(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: date = Field(alias="from")
    to: date
    timezone: str


class AgencyFollowUp(BaseModel):
    code: str
    name: str
    kind: str
    total: int
    pending: int
    dispatched: int
    acknowledged: int
    resolved: int
    not_followed_up: int


class Emergencies(BaseModel):
    # Calls classified emergency; incidents made for them; their primary agency's follow-up.
    total: int
    with_incident: int
    without_agency: int
    resolved: int
    not_followed_up: int
    in_progress: int
    by_agency: list[AgencyFollowUp]


class Summary(BaseModel):
    period: Period
    total: int
    answered: int
    abandoned_in_ivr: int
    abandoned_in_queue: int
    unanswered: int
    failed: int
    in_progress: int
    overflowed: int = Field(description="Calls whose queue round timed out at least once.")
    by_classification: dict[str, int]
    by_reason: dict[str, int]
    by_classification_reason: dict[str, dict[str, int]]
    prank_share: float | None
    emergencies: Emergencies


class AnswerTimes(BaseModel):
    date: date | None  # None for the whole period
    total: int
    answered: int
    abandoned_in_ivr: int
    abandoned_in_queue: int
    unanswered: int
    abandon_rate: float | None
    overflowed: int = Field(description="Calls whose queue round timed out at least once.")
    answer_p50: int | None = Field(
        description="Seconds from the call reaching the PBX to an operator answering (IVR "
        "included), nearest-rank percentile over answered calls."
    )
    answer_p90: int | None
    answer_p95: int | None
    answer_max: int | None
    within_10s: float | None = Field(
        description="Share of answered calls answered within 10 s of reaching the PBX."
    )
    within_15s: float | None = Field(description="The same within 15 s (NENA: 90%).")
    within_20s: float | None = Field(description="The same within 20 s (NENA: 95%).")
    wait_p50: int | None = Field(
        description="Seconds in the queue (first join to answer, every round), percentiles."
    )
    wait_p90: int | None
    wait_p95: int | None
    wait_max: int | None


class AnswerTimesReport(BaseModel):
    period: Period
    overall: AnswerTimes
    days: list[AnswerTimes]


class TimePoint(BaseModel):
    bucket: str
    total: int
    emergency: int
    prank: int
    non_emergency: int
    unclassified: int


class TimeSeries(BaseModel):
    period: Period
    interval: str
    points: list[TimePoint]


class OperatorFigures(BaseModel):
    operator: str
    answered: int
    mean_talk_seconds: float | None
    tagged: int
    emergency: int
    prank: int
    non_emergency: int


class Operators(BaseModel):
    period: Period
    operators: list[OperatorFigures]


class CallerFigures(BaseModel):
    caller: str
    masked: bool
    pranks: int


class Callers(BaseModel):
    period: Period
    callers: list[CallerFigures]


class RegionFigures(BaseModel):
    district: str
    emergencies: int


class Regions(BaseModel):
    period: Period
    regions: list[RegionFigures]
