"""A fake Asterisk for the IVR: the agi_* block and every reply are lines recorded from the real
Asterisk 22 in shared/asterisk-traces; only which recorded reply answers which command is chosen
here (the IVR sends other commands than the recording script did)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

from tests.conftest import TRACES


@dataclass
class RecordedSession:
    uniqueid: str
    env: list[bytes] = field(default_factory=list)  # agi_* lines and the blank line
    exchanges: list[tuple[str, list[bytes]]] = field(default_factory=list)

    def reply_to(self, command: str) -> list[bytes]:
        """The recorded reply lines to the first command that starts with `command`."""
        for sent, lines in self.exchanges:
            if sent.startswith(command):
                return lines
        raise LookupError(f"no {command!r} in session {self.uniqueid}")

    def with_uniqueid(self, uniqueid: str) -> RecordedSession:
        env = [
            f"agi_uniqueid: {uniqueid}\n".encode() if line.startswith(b"agi_uniqueid:") else line
            for line in self.env
        ]
        return RecordedSession(uniqueid, env, self.exchanges)


@cache
def sessions(scenario: str, transcript: str) -> list[RecordedSession]:
    """Sessions of `TRACES/<scenario>/<transcript>.jsonl`, lines kept as exact bytes."""
    result: dict[int, RecordedSession] = {}
    for text in (TRACES / scenario / f"{transcript}.jsonl").read_text().splitlines():
        record = json.loads(text)
        session = result.setdefault(record["session"], RecordedSession(record["uniqueid"]))
        data = (
            base64.b64decode(record["b64"]) if "b64" in record else record["data"].encode("utf-8")
        )
        if record["dir"] == "tx":
            session.exchanges.append((record["data"].rstrip("\n"), []))
        elif record["dir"] == "rx":
            if session.exchanges:
                session.exchanges[-1][1].append(data)
            else:
                session.env.append(data)
    return list(result.values())


def session(scenario: str, transcript: str, index: int = 0) -> RecordedSession:
    return sessions(scenario, transcript)[index]


class Replies:
    """Recorded reply lines, by what they mean."""

    def __init__(self) -> None:
        answered = session("01-answered", "agi-process")
        hung_up = session("05-hangup-in-ivr", "agi-process")
        fast_hung_up = session("05-hangup-in-ivr", "fastagi")
        self.answer = answered.reply_to("ANSWER")
        self.set_variable = answered.reply_to("SET VARIABLE")
        self.verbose = answered.reply_to("VERBOSE")
        self.played = answered.reply_to("STREAM FILE custom/112-welcome")
        self.missing_prompt = answered.reply_to("STREAM FILE custom/112-missing-prompt")
        self.channel_up = answered.reply_to("CHANNEL STATUS")
        self.invalid_command = answered.reply_to("FOO BAR")
        # STREAM FILE cut short by the caller's hangup, then 511 for every later command.
        self.hung_up_during_prompt = hung_up.reply_to("STREAM FILE custom/112-welcome")
        self.dead_channel = hung_up.reply_to("CHANNEL STATUS")
        # FastAGI: the unsolicited HANGUP line, then the 511 of the next command.
        self.fastagi_hangup_then_dead = next(
            lines for _, lines in fast_hung_up.exchanges if b"HANGUP\n" in lines
        )
        assert self.fastagi_hangup_then_dead[0] == b"HANGUP\n"
        assert self.dead_channel[0].startswith(b"511 ")


REPLIES = Replies()


@dataclass
class Scenario:
    """How this fake channel behaves: which prompts are missing, when the caller hangs up."""

    env: RecordedSession
    missing_prompts: frozenset[str] = frozenset()
    hang_up_during: str | None = None  # a prompt name
    fastagi: bool = False
    # Seconds Asterisk takes to play a prompt before it answers STREAM FILE.
    prompt_delay: float = 0.0
    sent: list[str] = field(default_factory=list)

    def converse(
        self,
        read_line: Callable[[], bytes],
        write: Callable[[bytes], None],
        on_hangup: Callable[[], None] = lambda: None,
    ) -> list[str]:
        """Play Asterisk until the IVR closes its end; returns the commands it sent."""
        write(b"".join(self.env.env))
        dead = False
        hangup_line_pending = False
        while line := read_line():
            command = line.decode("utf-8").rstrip("\n")
            self.sent.append(command)
            if dead:
                reply = REPLIES.dead_channel
                if hangup_line_pending:
                    reply = REPLIES.fastagi_hangup_then_dead
                    hangup_line_pending = False
            elif command.startswith("STREAM FILE "):
                prompt = command.split()[2]
                if prompt == self.hang_up_during:
                    reply = REPLIES.hung_up_during_prompt
                    dead = True
                    hangup_line_pending = self.fastagi
                elif prompt in self.missing_prompts:
                    reply = REPLIES.missing_prompt
                else:
                    reply = REPLIES.played
                    time.sleep(self.prompt_delay)
            elif command == "ANSWER":
                reply = REPLIES.answer
            elif command.startswith("SET VARIABLE "):
                reply = REPLIES.set_variable
            elif command.startswith("VERBOSE "):
                reply = REPLIES.verbose
            elif command == "CHANNEL STATUS":
                reply = REPLIES.channel_up
            else:
                reply = REPLIES.invalid_command
            write(b"".join(reply))
            if dead and not self.fastagi and command.startswith("STREAM FILE "):
                on_hangup()  # process AGI: SIGHUP arrives just after the -1 (as recorded)
        return self.sent


def expected_commands(
    uniqueid: str,
    *,
    flag: str,
    priority: int,
    lookup: str,
    pbx: str = "ttu-pbx-1",
    warning: bool = False,
    private_pres: int | None = None,
) -> list[str]:
    commands = [
        "ANSWER",
        f'SET VARIABLE CALLCENTER_CALL_ID "{pbx}:{uniqueid}"',
        'STREAM FILE custom/112-greeting ""',
    ]
    if private_pres is not None:
        commands.append(f'SET VARIABLE CALLER_PRES "{private_pres}"')
    commands += [
        f'SET VARIABLE CALLER_FLAG "{flag}"',
        f'SET VARIABLE QUEUE_PRIO "{priority}"',
    ]
    if warning:
        commands.append('STREAM FILE custom/112-prank-warning ""')
    commands.append(
        f'VERBOSE "Siaga112 IVR {pbx}:{uniqueid} flag={flag} prio={priority} lookup={lookup}" 1'
    )
    return commands
