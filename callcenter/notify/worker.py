"""The notification worker: claims what is due, sends it, records every attempt.

A notification is claimed (``claimed_until``) in one short transaction, sent with no
transaction open, and its attempt recorded in another. Sent once recorded sent: never again.
Killed between the send and the record, the claim runs out and the next worker sends it again
under the same idempotency key, which receivers use to keep one copy (SMS spool files are
named by it, so gammu-smsd gets each part once).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from callcenter.db import utcnow
from callcenter.errors import CallCenterError
from callcenter.incidents import service
from callcenter.incidents.followup import FollowUp
from callcenter.incidents.models import Agency, Assignment
from callcenter.notify import ack, escalation, gsm7, links, messages
from callcenter.notify.channels import gammu
from callcenter.notify.channels.base import DeliveryFailed, Outgoing, Sender
from callcenter.notify.channels.email import EmailSender
from callcenter.notify.channels.gammu import GammuSender
from callcenter.notify.channels.sms_http import SmsHttpSender
from callcenter.notify.channels.webhook import WebhookSender
from callcenter.notify.config import Channel, ChannelKind, NotifySettings
from callcenter.notify.models import (
    Audience,
    DeliveryAttempt,
    DeliveryStatus,
    Notification,
    NotificationKind,
)
from callcenter.settings import Settings

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


def default_senders(settings: NotifySettings) -> dict[ChannelKind, Sender]:
    return {
        ChannelKind.webhook: WebhookSender(timeout=settings.http_timeout_seconds),
        ChannelKind.email: EmailSender(settings.smtp),
        ChannelKind.sms_gammu: GammuSender(settings.gammu),
        ChannelKind.sms_http: SmsHttpSender(settings.sms_http),
    }


def channels_for(
    notification: Notification, agency_code: str | None, n: NotifySettings
) -> list[Channel]:
    if notification.audience is Audience.supervisor:
        return n.supervisor.channels
    contacts = n.contacts(agency_code or "")
    if notification.audience is Audience.second_contact:
        return contacts.second_contacts
    return contacts.channels


def ack_link(notification: Notification, settings: Settings) -> str | None:
    if notification.assignment_id is None or notification.audience is Audience.supervisor:
        return None
    n = settings.notify
    expires = notification.created_at + timedelta(hours=n.link_ttl_hours)
    token = links.sign(
        notification.assignment_id,
        expires=int(expires.timestamp()),
        secret=n.link_secret.get_secret_value().encode(),
    )
    return f"{n.public_base_url.rstrip('/')}/ack/{token}"


def render(notification: Notification, agency_code: str | None, settings: Settings) -> Outgoing:
    facts = dict(notification.payload) | {"audience": notification.audience.value}
    contacts = settings.notify.contacts(agency_code or "")
    if notification.audience is not Audience.supervisor and not contacts.share_caller_number:
        facts["caller_hidden"] = True
    kind = notification.kind.value
    link = ack_link(notification, settings)
    tz = settings.tz
    return Outgoing(
        key=notification.key,
        notification_id=notification.id,
        sms_parts=gsm7.split(messages.sms_text(kind, facts, link=link, tz=tz)),
        subject=messages.email_subject(kind, facts, tz=tz),
        body=messages.email_body(kind, facts, link=link, tz=tz),
        document=messages.webhook_document(kind, notification.key, facts, link=link, tz=tz),
    )


class Worker:
    def __init__(
        self,
        factory: sessionmaker[Session],
        settings: Settings,
        *,
        senders: Mapping[ChannelKind, Sender] | None = None,
        clock: Clock = utcnow,
        batch: int = 20,
    ) -> None:
        self.factory = factory
        self.settings = settings
        self.senders = dict(senders or default_senders(settings.notify))
        self.clock = clock
        self.batch = batch

    def run_once(self) -> int:
        """One round: scans for reminders, escalations and digests, SMS replies, then sends
        what is due. Returns how many notifications were attempted."""
        with self.factory.begin() as session:
            escalation.scan(session, settings=self.settings, now=self.clock())
        ack.read_sms_replies(self.factory, self.settings, now=self.clock)
        self.modem_failures()
        done = 0
        for notification_id in self.claim():
            self.deliver(notification_id)
            done += 1
        return done

    def run_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                busy = self.run_once()
            except OperationalError as exc:  # the database is away: one line, keep going
                reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
                log.error("notify round failed, the database is unreachable (%s); retrying", reason)
                busy = 0
            except Exception:  # anything else is ours: the traceback says where; nothing is lost
                log.exception("notify round failed; retrying")
                busy = 0
            if not busy:
                stop.wait(self.settings.notify.poll_seconds)

    def modem_failures(self) -> None:
        """A part the modem could not send reopens its notification on the next channel."""
        spool = self.settings.notify.gammu
        for failed in gammu.failed_parts(spool):
            with self.factory.begin() as session:
                notification = session.get(Notification, failed.notification_id)
                via = notification.sent_via if notification else None
                if notification is not None and (via or "").startswith("sms_gammu:"):
                    now = self.clock()
                    detail = f"the modem could not send part {failed.part} (gammu error folder)"
                    session.add(
                        DeliveryAttempt(
                            notification_id=notification.id,
                            channel=via or "",
                            started_at=now,
                            finished_at=now,
                            ok=False,
                            detail=detail,
                        )
                    )
                    notification.status = DeliveryStatus.pending
                    notification.sent_at = notification.sent_via = None
                    notification.last_error = detail
                    notification.channel_index += 1
                    notification.channel_attempts = 0
                    notification.next_attempt_at = now
                    log.warning("notification %s: %s", notification.key, detail)
            gammu.set_aside_failed(failed, spool)

    def claim(self) -> list[int]:
        now = self.clock()
        until = now + timedelta(seconds=self.settings.notify.claim_seconds)
        free = or_(Notification.claimed_until.is_(None), Notification.claimed_until < now)
        claimed = []
        with self.factory.begin() as session:
            due = session.scalars(
                select(Notification.id)
                .where(
                    Notification.status == DeliveryStatus.pending,
                    Notification.next_attempt_at <= now,
                    free,
                )
                .order_by(Notification.next_attempt_at, Notification.id)
                .limit(self.batch)
            ).all()
            for notification_id in due:
                result = session.execute(
                    update(Notification)
                    .where(
                        Notification.id == notification_id,
                        Notification.status == DeliveryStatus.pending,
                        free,
                    )
                    .values(claimed_until=until)
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    claimed.append(notification_id)
        return claimed

    def deliver(self, notification_id: int) -> None:
        with self.factory() as session:
            notification = session.get(Notification, notification_id)
            if notification is None or notification.status is DeliveryStatus.sent:
                return
            agency = session.get(Agency, notification.agency_id) if notification.agency_id else None
            code = agency.code if agency else None
            channels = channels_for(notification, code, self.settings.notify)
            message = render(notification, code, self.settings)
        started = self.clock()
        channel = channels[notification.channel_index % len(channels)] if channels else None
        try:
            if channel is None:
                whom = notification.audience.value + (f" of {code}" if code else "")
                raise DeliveryFailed(f"no channel configured for the {whom}")
            detail = self.senders[channel.kind](message, channel)
            failure = None
        except DeliveryFailed as exc:
            detail, failure = exc.detail, exc
        except Exception as exc:  # a sender bug must not stop the others: record and retry
            log.exception("sending notification %s failed", notification_id)
            detail, failure = f"internal error: {type(exc).__name__}", DeliveryFailed("")
        self.record(notification_id, channel, started, detail, failure, len(channels))

    def record(
        self,
        notification_id: int,
        channel: Channel | None,
        started: datetime,
        detail: str,
        failure: DeliveryFailed | None,
        channel_count: int,
    ) -> None:
        n = self.settings.notify
        now = self.clock()
        label = channel.label if channel else "none"
        with self.factory.begin() as session:
            notification = session.get(Notification, notification_id)
            if notification is None:
                return
            notification.claimed_until = None
            if channel is None and notification.last_error == detail[:2000]:
                # Still no channel for it: wait for one without adding a row every round.
                notification.next_attempt_at = now + timedelta(seconds=n.retry_max_seconds)
                return
            session.add(
                DeliveryAttempt(
                    notification_id=notification_id,
                    channel=label,
                    started_at=started,
                    finished_at=now,
                    ok=failure is None,
                    detail=detail[:2000],
                )
            )
            notification.attempts += 1
            if failure is None:
                notification.status = DeliveryStatus.sent
                notification.sent_at = now
                notification.sent_via = label
                notification.last_error = None
                log.info("notification %s sent via %s", notification.key, label)
                self._dispatched(session, notification, label, now)
                return
            notification.last_error = detail[:2000]
            notification.channel_attempts += 1
            delay = min(
                n.retry_max_seconds,
                n.retry_min_seconds * 2 ** (notification.channel_attempts - 1),
            )
            if not failure.retryable or notification.channel_attempts >= n.attempts_per_channel:
                # Fall back to the next channel at once; after the last, start over, later.
                notification.channel_index += 1
                notification.channel_attempts = 0
                wrapped = channel_count == 0 or notification.channel_index % channel_count == 0
                delay = n.retry_max_seconds if wrapped else 0.0
            notification.next_attempt_at = now + timedelta(seconds=delay)
            log.warning("notification %s not delivered via %s: %s", notification.key, label, detail)

    def _dispatched(
        self, session: Session, notification: Notification, label: str, now: datetime
    ) -> None:
        """An assignment the agency was told of is ``dispatched`` (diteruskan)."""
        if notification.kind is not NotificationKind.assigned or notification.assignment_id is None:
            return
        assignment = session.get(Assignment, notification.assignment_id)
        if assignment is None or assignment.status is not FollowUp.pending:
            return
        try:
            with session.begin_nested():
                service.change_status(
                    session,
                    user=None,
                    assignment_id=assignment.id,
                    status=FollowUp.dispatched,
                    reason=None,
                    expected_version=None,
                    now=now,
                    actor=label,
                    via="notify",
                )
        except CallCenterError:  # an operator moved it meanwhile: theirs stands
            pass
