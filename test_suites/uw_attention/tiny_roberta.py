"""A tiny RoBERTa, offline: the stand-in for ``roberta-base`` and SST-2 when grading A2S3 (trusted).

Nothing here touches the network. The tests build the same objects in this process (the
reference computation) and in the worker (what the student's code receives), from data:

- ``tokenizer_json()``: a BPE tokenizer trained with the ``tokenizers`` library on
  ``sst2_tiny.tsv`` (vocabulary of ``VOCAB_SIZE``, special tokens ``<s> <pad> </s> <unk> <mask>``
  with RoBERTa's ids 0..4, RoBERTa post-processing: every encoding starts with ``<s>`` and
  ends with ``</s>``), as a JSON string; rebuild it with ``Tokenizer.from_str``;
- ``config_dict()``: a 2-layer RoBERTa (hidden 32, 2 heads) for sequence classification with
  dropout (so train and eval modes differ) and room for 512 tokens;
- ``initial_state(seed)``: a deterministic state dict for that config;
- ``examples()``: the corpus as ``[{"text": ..., "label": ...}]`` (the hub dataset's rows).
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch

CORPUS = Path(__file__).with_name("sst2_tiny.tsv")
SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
VOCAB_SIZE = 300
MAX_LENGTH = 512
PAD_TOKEN = "<pad>"


@functools.lru_cache(maxsize=None)
def examples() -> tuple[tuple[str, int], ...]:
    """((text, label), ...) of the corpus, in file order."""
    rows = []
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        text, label = line.rsplit("\t", 1)
        rows.append((text, int(label)))
    return tuple(rows)


def raw_rows(indices) -> list[dict]:
    """The hub dataset's rows ``{"text": str, "label": int}`` for ``indices`` of the corpus."""
    data = examples()
    return [{"text": data[i][0], "label": data[i][1]} for i in indices]


@functools.lru_cache(maxsize=None)
def tokenizer_json() -> str:
    """The trained tokenizer, serialized (deterministic: one thread, fixed corpus order)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers

    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, min_frequency=1, special_tokens=list(SPECIALS),
                                  show_progress=False)
    tk.train_from_iterator([text for text, _ in examples()], trainer=trainer)
    tk.post_processor = processors.RobertaProcessing(("</s>", tk.token_to_id("</s>")),
                                                     ("<s>", tk.token_to_id("<s>")))
    return tk.to_str()


def tokenizer_kwargs() -> dict:
    """Keyword arguments of ``PreTrainedTokenizerFast`` besides ``tokenizer_object``."""
    return dict(bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token=PAD_TOKEN,
                cls_token="<s>", sep_token="</s>", mask_token="<mask>", model_max_length=MAX_LENGTH,
                model_input_names=["input_ids", "attention_mask"])


def make_tokenizer():
    """The tokenizer in this process (a ``PreTrainedTokenizerFast``, like ``AutoTokenizer`` gives)."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(tokenizer_json()), **tokenizer_kwargs())


@functools.lru_cache(maxsize=None)
def _vocab_size() -> int:
    from tokenizers import Tokenizer

    return Tokenizer.from_str(tokenizer_json()).get_vocab_size()


def config_dict() -> dict:
    """A tiny RobertaConfig (as keyword arguments), two labels, dropout on."""
    return dict(vocab_size=_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                intermediate_size=64, max_position_embeddings=MAX_LENGTH + 8, type_vocab_size=1,
                hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.2, classifier_dropout=0.2,
                pad_token_id=SPECIALS.index("<pad>"), bos_token_id=SPECIALS.index("<s>"),
                eos_token_id=SPECIALS.index("</s>"), num_labels=2, initializer_range=0.2)


def make_model():
    """A fresh model of ``config_dict()`` in this process (weights: load ``initial_state``)."""
    from transformers import RobertaConfig, RobertaForSequenceClassification

    return RobertaForSequenceClassification(RobertaConfig(**config_dict()))


@functools.lru_cache(maxsize=None)
def _shapes() -> tuple[tuple[str, tuple[int, ...], bool], ...]:
    model = make_model()
    return tuple((name, tuple(t.shape), t.is_floating_point()) for name, t in model.state_dict().items())


def initial_state(seed: int) -> dict[str, torch.Tensor]:
    """A deterministic state dict: N(0, 0.2) weights, LayerNorms at 1/0, buffers as built."""
    g = torch.Generator().manual_seed(seed)
    template = make_model().state_dict()
    state = {}
    for name, shape, floating in _shapes():
        if not floating or "position_ids" in name or "token_type_ids" in name:
            state[name] = template[name].clone()
        elif "LayerNorm.weight" in name:
            state[name] = torch.ones(shape)
        elif "LayerNorm.bias" in name:
            state[name] = torch.zeros(shape)
        else:
            state[name] = torch.randn(shape, generator=g) * 0.2
    return state
