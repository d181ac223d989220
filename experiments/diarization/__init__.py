"""The diarization study: DER, speaker count and cost of speaker-attributed transcripts (run.py), the clustering
threshold's calibration on speakers it never scores (calibration.py), references (reference.py), report (report.py)."""
