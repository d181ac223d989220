"""The translation report's round trip: WER after English -> Chinese -> English, and no figure without a translator."""

from __future__ import annotations

import socket
from dataclasses import dataclass

import pytest

from asrforge.experiments.translation.report import _round_trip
from asrforge.experiments.translation.run import round_trip
from asrforge.transcript import Transcript
from asrforge.translation import TranslationRequest, TranslatorConfig
from asrforge.translation.chat_completions import ChatCompletionsConfig

REFERENCES = ["The cat sat on the mat.", "A dog ran home."]


@dataclass(frozen=True)
class ForgetfulConfig(TranslatorConfig):
    name = "forgetful"

    def build(self) -> ForgetfulTranslator:
        return ForgetfulTranslator()


class ForgetfulTranslator:
    """Marks Chinese with a prefix, and loses each text's last word on the way back into English."""

    name = "forgetful"
    targets = frozenset({"en", "zh"})

    def translate(self, request: TranslationRequest) -> list[str]:
        if request.target == "zh":
            return ["ZH " + text for text in request.texts]
        return [text.removeprefix("ZH ").rsplit(" ", 1)[0] for text in request.texts]


def heard(index: int) -> Transcript:
    return Transcript(REFERENCES[index], "en", 2.0)


def test_round_trip_wer_counts_what_the_trip_lost():
    config = ForgetfulConfig()
    record = round_trip(config, config.build(), REFERENCES, heard)
    assert record["wer"] == pytest.approx(20.0)  # 2 of 10 words lost
    assert record["wer_transcripts"] == 0.0 and record["wer_transcripts_round_trip"] == pytest.approx(20.0)
    assert record["examples"][0] == {"reference": REFERENCES[0], "chinese": "ZH The cat sat on the mat.",
                                     "back": "The cat sat on the"}  # fmt: skip


def test_an_unreachable_translator_gives_no_figure_and_says_why():
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = ChatCompletionsConfig(base_url=f"http://127.0.0.1:{port}/v1", timeout_s=5)
    record = round_trip(config, config.build(), REFERENCES, heard)
    assert record["wer"] is None and "wer_transcripts" not in record
    assert record["not_measured"].startswith("not measured: no translator reachable")
    assert f"127.0.0.1:{port}" in record["not_measured"]
    assert "not measured: no translator reachable" in "\n".join(_round_trip(record))
