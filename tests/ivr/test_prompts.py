"""`make prompts`: real espeak-ng and sox turn the config texts into 8 kHz mono WAV."""

from __future__ import annotations

import wave
from pathlib import Path

from callcenter.ivr.prompts import make_prompts
from callcenter.settings import IvrSettings


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
