"""E-mail over SMTP ([notify.smtp]); the notification's key is the Message-ID."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from callcenter.notify.channels.base import DeliveryFailed, Outgoing
from callcenter.notify.config import Channel, SmtpSettings


class EmailSender:
    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    def build(self, message: Outgoing, to: str) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.settings.sender
        mail["To"] = to
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(localtime=False)
        domain = self.settings.sender.rpartition("@")[2] or "siaga112"
        mail["Message-ID"] = f"<{message.key}@{domain}>"
        mail["X-Siaga112-Key"] = message.key
        mail.set_content(message.body)
        return mail

    def __call__(self, message: Outgoing, channel: Channel) -> str:
        s = self.settings
        mail = self.build(message, channel.to)
        try:
            with smtplib.SMTP(s.host, s.port, timeout=s.timeout_seconds) as smtp:
                if s.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if s.username:
                    smtp.login(s.username, s.password.get_secret_value())
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused:
            raise DeliveryFailed(f"address refused: {channel.to}", retryable=False) from None
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryFailed(f"SMTP login refused ({exc.smtp_code})") from None
        except smtplib.SMTPResponseException as exc:
            raise DeliveryFailed(f"SMTP {exc.smtp_code}", retryable=exc.smtp_code < 500) from None
        except (smtplib.SMTPException, TimeoutError, OSError) as exc:
            raise DeliveryFailed(f"SMTP server unreachable: {type(exc).__name__}") from None
        return "accepted by SMTP server"
