"""The OpenAI audio API's response bodies as pydantic models: they document /docs and type the SSE events."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class TranscriptionJSON(BaseModel):
    text: str


class VerboseSegment(BaseModel):
    id: int
    start: float = Field(description="seconds from the start of the file")
    end: float
    text: str


class VerboseWord(BaseModel):
    word: str
    start: float
    end: float


class VerboseTranscription(BaseModel):
    task: Literal["transcribe", "translate"]
    language: str | None
    duration: float = Field(description="seconds of audio")
    text: str
    segments: list[VerboseSegment]
    words: list[VerboseWord] | None = Field(None, description="with timestamp_granularities[]=word")


class DiarizedSegment(BaseModel):
    type: Literal["transcript.text.segment"] = "transcript.text.segment"
    id: str
    speaker: str = Field(description="a known_speaker_names[] entry, else A, B, C... in order of first appearance")
    start: float = Field(description="seconds from the start of the file")
    end: float
    text: str


class DurationUsage(BaseModel):
    type: Literal["duration"] = "duration"
    seconds: float


class DiarizedTranscription(BaseModel):
    """response_format=diarized_json: who spoke when; no segment spans two speakers."""

    task: Literal["transcribe"] = "transcribe"
    duration: float = Field(description="seconds of audio")
    text: str
    segments: list[DiarizedSegment]
    usage: DurationUsage | None = None


class TextSegmentEvent(DiarizedSegment):
    """stream=true with response_format=diarized_json: one per speaker segment, in order, then done."""


class TextDeltaEvent(BaseModel):
    """stream=true: one per finished chunk, in order."""

    type: Literal["transcript.text.delta"] = "transcript.text.delta"
    delta: str


class TextDoneEvent(BaseModel):
    """stream=true: the last event, with the whole text."""

    type: Literal["transcript.text.done"] = "transcript.text.done"
    text: str
    usage: DurationUsage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "asrforge"
    weights: str | None = Field(
        None, description='which weights run: checkpoint path + content hash, or "random (...)"'
    )


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


TRANSCRIPTION_RESPONSES: dict[int | str, dict] = {
    200: {
        "description": "The transcript in the requested response_format (or an SSE stream with stream=true: "
        "transcript.text.delta events, or transcript.text.segment events with diarized_json, then "
        "transcript.text.done)",
        "content": {
            "application/json": {
                "schema": {
                    "anyOf": [
                        {"$ref": "#/components/schemas/TranscriptionJSON"},
                        {"$ref": "#/components/schemas/VerboseTranscription"},
                        {"$ref": "#/components/schemas/DiarizedTranscription"},
                    ]
                }
            },
            "text/plain": {"schema": {"type": "string"}, "example": "And so my fellow Americans..."},
            "application/x-subrip": {"schema": {"type": "string"}, "example": "1\n00:00:00,000 --> 00:00:02,000\nHi\n"},
            "text/vtt": {"schema": {"type": "string"}, "example": "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nHi\n"},
            "text/event-stream": {
                "schema": {"type": "string"},
                "example": 'data: {"type":"transcript.text.delta","delta":"Hi"}\n\n'
                'data: {"type":"transcript.text.done","text":"Hi","usage":{"type":"duration","seconds":2.0}}\n\n',
            },
        },
    }
}


def add_component_schemas(spec: dict) -> dict:
    """Put the response models that only appear in ``content`` (not as a route's response_model) into the spec."""
    from pydantic.json_schema import models_json_schema

    models = [
        (m, "serialization")
        for m in (
            TranscriptionJSON,
            VerboseTranscription,
            DiarizedTranscription,
            TextDeltaEvent,
            TextSegmentEvent,
            TextDoneEvent,
        )
    ]
    _, schemas = models_json_schema(models, ref_template="#/components/schemas/{model}")
    spec.setdefault("components", {}).setdefault("schemas", {}).update(schemas.get("$defs", {}))
    return spec
