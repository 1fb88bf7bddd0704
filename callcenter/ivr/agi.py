"""The one module that speaks AGI, through pyst2's `asterisk.agi.AGI`, with its defects defused.

What pyst2 0.5.1 gets wrong (/work/shared/PYST2.md) and what `SafeAGI` does instead:

* ``200 result=-1`` raises AGIAppError for a missing prompt and for a hangup alike. Here a -1
  is a plain result; after a failed STREAM FILE the channel is probed with CHANNEL STATUS:
  ``200 result=6`` means the caller is still there (missing prompt), 511 means gone.
* ``511 Command Not Permitted on a dead channel`` raises AGIUnknownError: here it is a hangup.
* FastAGI's unsolicited ``HANGUP`` line is read by pyst2 as the reply to the next command, and
  every later reply is off by one. Here a ``HANGUP`` line is noted and the real reply read after.
* SET VARIABLE / VERBOSE arguments are quoted without escaping, so Asterisk drops the quotes.
  Here ``"`` and ``\\`` are escaped as Asterisk's argument parser expects, newlines removed.
* AGI() installs a SIGHUP handler, so it only works in a process's main thread. Asterisk sends
  SIGHUP only to process AGIs (FastAGI gets the ``HANGUP`` line instead), so a FastAGI session
  builds its SafeAGI with ``sighup=False``: same environment reader, no handler, any thread.
* pyst2 refuses to send anything once SIGHUP has arrived. Here commands are always sent and
  Asterisk's 511 says the channel is dead, so what the IVR sends does not depend on when the
  signal lands; the SIGHUP only confirms a hangup.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any, BinaryIO

import asterisk.agi as pyst2_agi

from callcenter.ivr.session import AgiProtocolError, CallerHungUp

HANGUP_LINE = "HANGUP"
CHANNEL_UP = 6
_REPLY = re.compile(r"^(?P<code>\d{3})(?P<sep>[ -])(?P<text>.*)$")
_RESULT = re.compile(r"result=(?P<result>-?\d*)(?:\s+\((?P<data>.*)\))?")
_BARE_ARGUMENT = re.compile(r"^[\w./-]+$")


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    result: str
    data: str
    line: str


class _Discard(io.TextIOBase):
    """pyst2 narrates every line to stderr; process AGI stderr lands on the Asterisk console."""

    def write(self, text: str) -> int:
        return len(text)


def text_streams(reader: BinaryIO, writer: BinaryIO) -> tuple[io.TextIOWrapper, io.TextIOWrapper]:
    """Line-oriented text over AGI byte streams. Asterisk passes caller names through as bytes
    (Latin-1 names are not UTF-8): undecodable bytes become U+FFFD instead of killing the IVR."""
    return (
        io.TextIOWrapper(reader, encoding="utf-8", errors="replace", newline="\n"),
        io.TextIOWrapper(writer, encoding="utf-8", errors="replace", newline="\n"),
    )


def quote(value: str) -> str:
    """An AGI argument in double quotes, escaped the way res_agi's parse_args unescapes it.

    >>> print(quote('needs "quotes" and spaces'))
    "needs \\"quotes\\" and spaces"
    >>> print(quote("two\\nlines"))
    "two lines"
    """
    cleaned = value.replace("\r", " ").replace("\n", " ")
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


class SafeAGI(pyst2_agi.AGI):  # type: ignore[misc]  # pyst2 ships no types
    """pyst2's AGI (environment block, SIGHUP handler, command line) with safe replies."""

    def __init__(self, stdin: io.TextIOBase, stdout: io.TextIOBase, *, sighup: bool = True) -> None:
        self.hangup_line_seen = False
        if sighup:
            # Process AGI: pyst2 installs its SIGHUP handler (main thread only), reads agi_*.
            super().__init__(stdin=stdin, stdout=stdout, stderr=_Discard())
            return
        # FastAGI: what pyst2's __init__ does, less signal.signal, so any thread may run it.
        self.stdin, self.stdout, self.stderr = stdin, stdout, _Discard()
        self._got_sighup = False
        self.env: dict[str, str] = {}
        self._get_agi_env()

    @property
    def sighup_received(self) -> bool:
        return bool(self._got_sighup)

    def _quote(self, string: Any) -> str:
        return quote(str(string))

    def execute(self, command: str, *args: Any) -> Reply:
        try:
            self.send_command(command, *args)
        except OSError as exc:  # EPIPE / reset: Asterisk closed its end
            raise CallerHungUp(f"cannot send {command}: {exc}") from exc
        return self.read_reply()

    def read_reply(self) -> Reply:
        line = self._read_line()
        while line == HANGUP_LINE:
            self.hangup_line_seen = True
            line = self._read_line()
        match = _REPLY.match(line)
        if match is None:
            raise AgiProtocolError(f"unexpected line from Asterisk: {line[:200]!r}")
        code = int(match["code"])
        if code == 200:
            result = _RESULT.search(match["text"])
            if result is None:
                raise AgiProtocolError(f"200 reply without a result: {line[:200]!r}")
            return Reply(code, result["result"], result["data"] or "", line)
        if code == 511:
            raise CallerHungUp(match["text"])
        if match["sep"] == "-":  # 520- usage text runs until the "520 " line
            while not self._read_line().startswith(f"{code} "):
                pass
        raise AgiProtocolError(f"Asterisk refused a command: {line[:200]!r}")

    def _read_line(self) -> str:
        try:
            line: str = self.stdin.readline()
        except OSError as exc:  # timeout or reset on the FastAGI socket
            raise CallerHungUp(f"connection lost: {exc}") from exc
        if not line:
            raise CallerHungUp("Asterisk closed the AGI connection")
        return line.rstrip("\r\n")


class AgiChannel:
    """The session's `Channel` over a SafeAGI."""

    def __init__(self, agi: SafeAGI) -> None:
        self.agi = agi

    @property
    def env(self) -> dict[str, str]:
        env: dict[str, str] = self.agi.env
        return env

    def answer(self) -> None:
        self.agi.execute("ANSWER")

    def set_variable(self, name: str, value: str) -> None:
        self.agi.execute("SET VARIABLE", name, quote(value))

    def verbose(self, message: str) -> None:
        self.agi.execute("VERBOSE", quote(message), 1)

    def play(self, prompt: str) -> bool:
        name = prompt if _BARE_ARGUMENT.match(prompt) else quote(prompt)
        reply = self.agi.execute("STREAM FILE", name, '""')
        if reply.result != "-1":
            return True
        # -1 is a missing file or a hangup: ask the channel (511 raises CallerHungUp).
        status = self.agi.execute("CHANNEL STATUS")
        if self.agi.hangup_line_seen or self.agi.sighup_received:
            raise CallerHungUp("hangup signalled while a prompt played")
        if status.result != str(CHANNEL_UP):
            raise CallerHungUp(f"channel status {status.result} after a failed prompt")
        return False
