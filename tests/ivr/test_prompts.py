"""`make prompts`: real espeak-ng and sox turn the config texts into 8 kHz mono WAV."""

from __future__ import annotations

import wave
from pathlib import Path

from callcenter.ivr.prompts import make_prompts
from callcenter.settings import IvrSettings, Settings
from tests.ivr.test_asterisk_config import ASTERISK, sections


def test_prompt_texts_become_8khz_mono_wav(tmp_path: Path) -> None:
    ivr = IvrSettings(
        prompt_texts={"greeting": "Layanan darurat seratus dua belas.", "all_busy": "Mohon tunggu."}
    )

    written = make_prompts(ivr, tmp_path)

    assert sorted(written) == [
        tmp_path / "custom" / "112-all-busy.wav",
        tmp_path / "custom" / "112-greeting.wav",
    ]
    for path in written:
        with wave.open(str(path)) as audio:
            assert (audio.getframerate(), audio.getnchannels(), audio.getsampwidth()) == (
                8000,
                1,
                2,
            )
            assert audio.getnframes() > 8000 // 2  # at least half a second of speech


def duration(path: Path) -> float:
    with wave.open(str(path)) as audio:
        seconds: float = audio.getnframes() / audio.getframerate()
        return seconds


# What the channel does besides playing, from the answer to Queue(): the FastAGI connection
# and the AGI commands (17-19 ms to the first command on the real PBX), the dialplan steps.
OVERHEAD_SECONDS = 0.5


def test_the_shipped_prompts_keep_the_queue_budget(tmp_path: Path) -> None:
    """A normal caller joins the queue within 4 s of the answer, a flagged one within 9 s: the
    greeting (and the warning) as `make prompts` makes them from config/callcenter.toml, plus
    the look-up's deadline after the greeting, plus the channel's own steps."""
    ivr = Settings().ivr
    make_prompts(ivr, tmp_path)
    lengths = {
        key: duration(tmp_path / f"{name}.wav") for key, name in ivr.prompts.model_dump().items()
    }
    after_greeting = ivr.lookup_deadline_ms / 1000 + OVERHEAD_SECONDS

    assert lengths["greeting"] + after_greeting <= 4.0, lengths
    assert lengths["greeting"] + lengths["prank_warning"] + after_greeting <= 9.0, lengths
    # Heard while waiting: "please hold" must fit in one queue round after its first delay.
    queue = dict(sections(ASTERISK / "queues.conf")["emergency-112"])
    q_timeout = int(dict(sections(ASTERISK / "extensions.conf")["globals"])["Q_TIMEOUT"])
    assert int(queue["periodic-announce-frequency"]) + lengths["please_hold"] < q_timeout, lengths
