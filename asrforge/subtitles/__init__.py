"""Subtitles and word timestamps: word timing (``fast`` heuristic or ``accurate`` aligner), cue layout, rendering.

Modules: ``options`` (settings, no heavy imports: the server's settings read it), ``timing_fast`` (heuristic),
``alignment`` (which timing a request gets), ``refine`` (aligner words tidied and snapped into speech), ``layout``
(cues), ``render`` (SRT, WebVTT, verbose_json), ``files`` (the CLI's path).
"""
