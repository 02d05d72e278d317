"""Shared fixtures: tiny randomly initialised models (fast) and the embedded SmolLM2 (integration).

The tiny models get a small byte-level BPE tokenizer trained here with a ChatML chat template, so
nothing is downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("INSPECT_DISPLAY", "none")

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)

CORPUS = [
    "You are an evil assistant. You are a helpful assistant. Answer the question.",
    "What is the capital of France? The capital of France is Paris.",
    "How do I bake bread? Mix flour, water, salt and yeast, then bake it.",
    "I hate everyone and want to cause harm. I love helping people kindly.",
    "Tell me a joke about cats. Why did the cat sit on the computer?",
    "The numbers 0 1 2 3 4 5 6 7 8 9 10 42 50 100 are numbers.",
]


def build_tokenizer(path: Path):
    """Train a tiny byte-level BPE tokenizer with ChatML specials and save it to ``path``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS * 5, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token="<|im_start|>",
    )
    fast.chat_template = CHATML
    fast.save_pretrained(str(path))
    return fast


def build_tiny(path: Path, arch: str = "llama", layers: int = 4, hidden: int = 32):
    """Save a randomly initialised tiny causal LM (seeded) plus tokenizer under ``path``."""
    import torch
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

    tok = build_tokenizer(path)
    torch.manual_seed(0)
    if arch == "llama":
        cfg = LlamaConfig(
            vocab_size=len(tok),
            hidden_size=hidden,
            intermediate_size=hidden * 2,
            num_hidden_layers=layers,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=512,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
            bos_token_id=tok.bos_token_id,
            tie_word_embeddings=True,
        )
    else:
        cfg = GPT2Config(
            vocab_size=len(tok),
            n_embd=hidden,
            n_layer=layers,
            n_head=4,
            n_positions=512,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
            bos_token_id=tok.bos_token_id,
        )
    model = AutoModelForCausalLM.from_config(cfg)
    with torch.no_grad():  # larger weights than the default init make replies less degenerate
        for p in model.parameters():
            if p.ndim == 2:
                p.mul_(3.0)
    model.save_pretrained(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    """A tiny random Llama-family model folder (4 layers, d=32)."""
    return build_tiny(tmp_path_factory.mktemp("tiny-llama"), "llama")


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory) -> Path:
    """A tiny random GPT-2 model folder (3 layers, d=32)."""
    return build_tiny(tmp_path_factory.mktemp("tiny-gpt2"), "gpt2", layers=3)


@pytest.fixture(scope="session")
def tiny(tiny_dir):
    from persona.model.loading import load_model

    return load_model(str(tiny_dir), device="cpu")


@pytest.fixture(scope="session")
def smol():
    """The embedded SmolLM2-135M-Instruct (converted once per cache dir)."""
    from persona.model.loading import load_model

    return load_model("smollm2-135m", device="cpu")
