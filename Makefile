# Two targets, each doing its own set-up:  make test  |  make notebook
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NB     := assignment_2_question_1.ipynb
# ner_utils.load_model probes the model hub for 3 s at most and falls back, loudly, to the embedded
# checkpoint when it is unreachable; set HF_HUB_OFFLINE=1 to skip the probe. The tests set it themselves.
export TOKENIZERS_PARALLELISM ?= false

.PHONY: test notebook clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first, pinned to the CPU build on this machine's disk; a bare `torch` would pull a multi-GB CUDA wheel.
$(STAMP): $(BIN)/python requirements.txt requirements-dev.txt
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest tests
	@if [ -f $(NB) ]; then NER_SMOKE=1 $(BIN)/python -m pytest -p no:cacheprovider --nbval-lax --nbval-current-env $(NB); \
	 else echo "$(NB) not written yet: notebook replay skipped"; fi

notebook: $(STAMP)
	@test -f $(NB) || { echo "error: $(NB) does not exist yet (it arrives with the notebook issue)"; exit 1; }
	$(BIN)/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=-1 $(NB)
	@# second pass, no execution: collapse progress bars (\r updates) to their final state
	$(BIN)/jupyter nbconvert --to notebook --inplace --coalesce-streams $(NB)

clean:
	rm -rf $(VENV) .pytest_cache
