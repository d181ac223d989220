# Every target installs on first use, so `make bench` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install test bench report serve lint format clean

install: $(STAMP)

# Where no CUDA driver is present, install the CPU build of torch first (pip finds it on this machine's disk);
# otherwise pyproject's `torch>=2.9` range lets pip keep or fetch the machine's CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	if ! command -v nvidia-smi >/dev/null 2>&1; then $(BIN)/pip install -q torch==2.13.0; fi
	$(BIN)/pip install -q -e '.[dev]'
	# The speaker encoder's weights (asrforge/diarization/encoder.py): the wheel without librosa/webrtcvad.
	$(BIN)/pip install -q --no-deps 'resemblyzer==0.1.4'
	touch $@

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/asrforge run bench

serve: $(STAMP)
	$(BIN)/asrforge serve

# Re-render every study's reports from their committed records (measures nothing).
report: $(STAMP)
	$(BIN)/asrforge report

# 64 clients (HTTP, SSE, WebSocket) for 60 s against uvicorn, then granian; writes reports/serving/. ARGS=... adds
# options and server overrides, e.g. make loadtest ARGS="--servers granian serving.scheduler.max_batch_size=1".
.PHONY: loadtest
loadtest: $(STAMP)
	$(BIN)/asrforge run load $(ARGS)

# Realtime partials at the server's cadence per encoder-window margin, on the dev set's tuning part (cost a step,
# first fixed text, fixed words against the final); writes reports/serving/partials.{jsonl,md}. About 2 minutes.
.PHONY: partials
partials: $(STAMP)
	$(BIN)/asrforge run partials $(ARGS)

# The performance regression gate (conf/gate.yaml; how it judges: reports/gate/README.md): this working tree against
# a base commit (the merge base with main, or HEAD~1 on main) checked out beside it, both timed on this machine in
# one run; exits 1 on a regression, 2 only when there is no base to compare with. ARGS=... adds overrides, e.g.
# make gate ARGS="base=HEAD~3 device=cuda".
.PHONY: gate
gate: $(STAMP)
	$(BIN)/asrforge run gate $(ARGS)

# Subtitle timing (fast vs accurate) and translation reports: reports/cpu/subtitles.md, reports/cpu/translation.md.
# ARGS=... adds options, e.g. make translation-report ARGS="--translator-url http://127.0.0.1:8001/v1".
.PHONY: subtitles-report translation-report
subtitles-report: $(STAMP)
	$(BIN)/asrforge run subtitles $(ARGS)

translation-report: $(STAMP)
	$(BIN)/asrforge run translation $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

# Per-chunk streaming cost over a 5-min real-speech stream: re-feeding vs kv_reuse vs kv_reuse+causal_encoder vs
# dual_model; writes reports/cpu/streaming.{jsonl,md,png}. ARGS=... adds options, e.g. ARGS="--modes refeed,kv_reuse".
.PHONY: streaming
streaming: $(STAMP)
	$(BIN)/asrforge run streaming $(ARGS)

# The whole command against faster-whisper's (imports, model load, every file), interleaved runs per file set;
# writes reports/cpu/cli.{jsonl,md}. ARGS=... adds options, e.g. ARGS="--rounds 5 --sets test".
.PHONY: cli-report
cli-report: $(STAMP)
	$(BIN)/asrforge run cli $(ARGS)

# Speaker diarization on eval/long/dev_concat_once.wav: DER (pyannote.metrics, 0.25-s collar), speaker count, cost
# against the plain decode; writes reports/cpu/diarization.{jsonl,md}. ARGS=... adds options, e.g. ARGS="--repeats 5".
.PHONY: diarization-report
diarization-report: $(STAMP)
	$(BIN)/asrforge run diarization $(ARGS)

# The shrink study: encoder-window margins, decoder-layer subsets and pruned attention heads against the CPU winner,
# interleaved; appends to reports/cpu/shrink.jsonl and renders reports/cpu/shrink.md (one curve per lever).
# ARGS="--threads 2" etc.
.PHONY: shrink
shrink: $(STAMP)
	$(BIN)/asrforge run shrink encoder_window --trials 2 $(ARGS)
	$(BIN)/asrforge run shrink decoder_layers --trials 1 --no-long --max-new-tokens 96 $(ARGS)
	$(BIN)/asrforge run shrink attention_heads --trials 2 $(ARGS)
