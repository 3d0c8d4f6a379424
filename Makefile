# Set-up and the two commands of the README. Both create or reuse .venv/ and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# PyTorch's CPU wheel, pinned: a bare "torch" would pull a multi-GB CUDA build.
TORCH_PIN := torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean-venv

# The main job: inspect the bundled sample images with the bundled models (the engine measured fastest
# on this CPU: ONNX Runtime or, where faster, OpenVINO): NEU steel
# with the classifier, KolektorSDD commutators with the segmenter.
demo: $(STAMP)
	$(BIN)/lwcnn inspect samples/neu --out inspection/neu
	$(BIN)/lwcnn inspect samples/kolektorsdd --weights kolektorsdd --out inspection/kolektorsdd

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/python -m pytest

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PIN)
	$(BIN)/python -m pip install --quiet -e '.[train,dev,openvino,line]'
	touch $(STAMP)

clean-venv:
	rm -rf $(VENV)
