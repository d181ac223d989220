"""asrforge: benchmark-driven inference optimization and an OpenAI-compatible server for speech recognition.

The installed package maps the repository's top-level folders into sub-packages:
``engines/`` -> ``asrforge.engines``, ``optimizations/`` -> ``asrforge.optimizations``,
``serving/`` -> ``asrforge.serving``, ``experiments/`` -> ``asrforge.experiments``, ``conf/`` -> ``asrforge.conf``.
"""

__version__ = "0.1.0"
