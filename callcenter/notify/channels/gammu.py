"""SMS through gammu-smsd's FILES backend: a file in its outbox; replies read from its inbox.

Works with the internet down: gammu-smsd hands the files to a GSM modem. Outbox file names
carry the notification id and part (``OUTA_<number>_n<id>p<part>.txt``), so a retry finds the
part already spooled (in the outbox, or moved to ``sent``) and never queues it twice. Files are
written under a dot-name and renamed, so gammu-smsd never reads half a message.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from callcenter.notify.channels.base import DeliveryFailed, Outgoing
from callcenter.notify.config import Channel, GammuSettings

# IN<date>_<time>_<serial>_<sender>_<sequence>.txt (gammu-smsd-files(7))
_INBOX_NAME = re.compile(r"^IN(\d{8})_(\d{6})_(\d+)_([^_]+)_(\d+)\.txt$")
_OUTBOX_NAME = re.compile(r"^OUTA_([^_]+)_n(\d+)p(\d+)\.txt$")


def outbox_name(number: str, notification_id: int, part: int) -> str:
    return f"OUTA_{number}_n{notification_id}p{part}.txt"


class GammuSender:
    def __init__(self, settings: GammuSettings) -> None:
        self.settings = settings

    def _spooled(self, name: str) -> bool:
        return any((Path(d) / name).exists() for d in (self.settings.outbox, self.settings.sent))

    def __call__(self, message: Outgoing, channel: Channel) -> str:
        outbox = Path(self.settings.outbox)
        written = 0
        for part, text in enumerate(message.sms_parts, 1):
            name = outbox_name(channel.to, message.notification_id, part)
            if self._spooled(name):
                continue
            scratch = outbox / f".{name}.tmp"
            try:
                with open(scratch, "wb") as handle:
                    handle.write(text.encode("utf-16"))  # the "unicode" format, with a BOM
                    handle.flush()
                    os.fsync(handle.fileno())
                os.rename(scratch, outbox / name)
            except OSError as exc:
                raise DeliveryFailed(f"gammu outbox not writable: {exc.strerror}") from None
            written += 1
        return f"{written} of {len(message.sms_parts)} part(s) queued for the modem"


@dataclass(frozen=True)
class InboxMessage:
    path: Path
    sender: str
    text: str


def read_inbox(settings: GammuSettings) -> list[InboxMessage]:
    """Text messages gammu-smsd received, oldest first (by the names it gives them)."""
    inbox = Path(settings.inbox)
    if not inbox.is_dir():
        return []
    found = []
    for path in sorted(inbox.iterdir()):
        match = _INBOX_NAME.match(path.name)
        if match is None:
            continue
        raw = path.read_bytes()
        if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
            text = raw.decode("utf-16")
        else:
            text = raw.decode("utf-8", errors="replace")
        found.append(InboxMessage(path=path, sender=match.group(4), text=text))
    return found


def set_aside(message: InboxMessage, settings: GammuSettings) -> None:
    """Move a message that is recorded out of the inbox (it is never read twice either way)."""
    processed = Path(settings.processed)
    processed.mkdir(parents=True, exist_ok=True)
    os.replace(message.path, processed / message.path.name)


@dataclass(frozen=True)
class FailedPart:
    """A part gammu-smsd could not send (it moves those to its error folder)."""

    path: Path
    notification_id: int
    part: int


def failed_parts(settings: GammuSettings) -> list[FailedPart]:
    error = Path(settings.error)
    if not error.is_dir():
        return []
    found = []
    for path in sorted(error.iterdir()):
        match = _OUTBOX_NAME.match(path.name)
        if match is not None:
            found.append(FailedPart(path, int(match.group(2)), int(match.group(3))))
    return found


def set_aside_failed(failed: FailedPart, settings: GammuSettings) -> None:
    """Move a failed part out of the error folder once recorded (a retry spools it afresh)."""
    processed = Path(settings.processed)
    processed.mkdir(parents=True, exist_ok=True)
    os.replace(failed.path, processed / f"ERR-{failed.path.name}")
