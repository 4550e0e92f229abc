"""Tiny random BERT checkpoints for fast, offline training tests.

The real MiniLM takes seconds per CPU step.  These helpers write a 2-layer, 32-wide BERT (~35k
parameters) plus a real WordPiece tokenizer to a local dir, so tests can run load -> tokenize ->
train -> predict in well under a second, offline.  Weights are random: expect no learning.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from pathlib import Path

import torch
from transformers import BertConfig, BertForSequenceClassification, BertModel, BertTokenizerFast

__all__ = ["make_tiny_bert", "make_tiny_classifier"]

# Position limit, also the tokenizer's model_max_length so bare `truncation=True` stays inside.
MAX_POSITIONS = 128

_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # ids 0..4, as in BERT's own order
# No apostrophe pieces: the BERT pre-tokenizer splits "don't" into "don", "'", "t" anyway.
_SUFFIXES = ["##s", "##ed", "##ing", "##ly", "##er", "##est"]
_COMMON_WORDS = """
the be to of and a in that have i it for not on with he as you do at this but his by from they we
say her she or an will my one all would there their what so up out if about who get which go me
when make can like time no just him know take people into year your good some could them see other
than then now look only come its over think also back after use two how our work first well way
even new want because any these give day most us is are was were been has had did does said made
went got very much more many such long great little own old right big high small large next early
young important few public bad same able last late hard major better best sure free real whole true
full low clear close open short happy sad love hate fun funny boring dull bright dark beautiful
ugly nice fine poor rich strong weak easy simple quick slow cold hot warm movie film story plot
actor actors cast scene scenes director script music character characters performance performances
comedy drama horror action thriller picture show series book world life man woman men women child
children family friend friends house home city country school money water food car game team news
market company business government president war state question answer thing things part place case
point problem number fact hand eye face head word words name night week month today tomorrow
yesterday always never often sometimes again still here where why every each both neither either
nothing something everything anything someone should must might may shall cannot too quite rather
really almost enough yet though although while since until before during through between against
without within under above across around down off away ever perhaps excellent terrible awful
wonderful amazing brilliant stupid smart clever worst mess masterpiece entertaining charming
compelling predictable dumb silly sweet moving powerful original fresh positive negative neutral
happy angry fear joy surprise disgust sadness trust anger sports science technology health world
politics economy stock stocks price prices oil
"""


def _build_vocab(extra: Iterable[str] | None) -> list[str]:
    """Return the ordered, de-duplicated vocabulary: specials first, then pieces and words."""
    tokens = [
        *_SPECIAL,
        *string.ascii_lowercase,
        *string.digits,
        *string.punctuation,
        *(f"##{c}" for c in string.ascii_lowercase + string.digits),
        *_SUFFIXES,
        *_COMMON_WORDS.split(),
        # The tokenizer lowercases its input, so upper-case vocab entries would never match.
        *(w.strip().lower() for w in (extra or ()) if w.strip()),
    ]
    return list(dict.fromkeys(tokens))  # keeps first occurrence, preserves order


def _write_tokenizer(path: Path, vocab_words: Iterable[str] | None) -> int:
    """Write vocab.txt plus a saved fast WordPiece tokenizer into `path`; return vocab size."""
    vocab = _build_vocab(vocab_words)
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    # transformers 5.x: BertTokenizerFast is an alias of BertTokenizer and takes `vocab=`; a
    # `vocab_file=` keyword is silently ignored (5-token vocabulary!), so pass the mapping.
    tokenizer = BertTokenizerFast(
        vocab={token: i for i, token in enumerate(vocab)}, model_max_length=MAX_POSITIONS
    )
    # Writes tokenizer.json + tokenizer_config.json; 5.x does not write vocab.txt (ours stays).
    tokenizer.save_pretrained(path)
    return len(vocab)


def _save_tiny(
    path: str | Path,
    model_cls: type[BertModel] | type[BertForSequenceClassification],
    vocab_words: Iterable[str] | None,
    seed: int,
    **config_extra: object,
) -> Path:
    """Write tokenizer + a seeded random `model_cls` built from the tiny config to `path`."""
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    config = BertConfig(
        vocab_size=_write_tokenizer(out, vocab_words),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=MAX_POSITIONS,
        pad_token_id=0,
        **config_extra,
    )
    # fork_rng: seed deterministically without disturbing the caller's global RNG state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_cls(config)
    model.save_pretrained(out)  # safetensors is the only format in 5.x
    return out


def make_tiny_bert(
    path: str | Path,
    *,
    num_labels: int = 2,
    vocab_words: Iterable[str] | None = None,
    seed: int = 0,
) -> Path:
    """Write a tiny random *base* BERT (no classifier head) and its tokenizer to `path`.

    Loading it with `AutoModelForSequenceClassification.from_pretrained(path, num_labels=k)`
    creates a fresh classifier head of any width k (transformers reports it as newly
    initialised).  `num_labels` only sets the config default used when k is not given.
    `vocab_words` are added to the built-in vocabulary (lower-cased).  The same arguments
    always give the same weights.  Returns `path` as a `Path`.
    """
    return _save_tiny(path, BertModel, vocab_words, seed, num_labels=num_labels)


def make_tiny_classifier(
    path: str | Path,
    *,
    num_labels: int,
    id2label: dict[int, str] | None = None,
    problem_type: str | None = None,
    vocab_words: Iterable[str] | None = None,
    seed: int = 0,
) -> Path:
    """Write a tiny random `BertForSequenceClassification` (head already present) to `path`.

    Meant for tests of head-width / label-map mismatch: the saved checkpoint has a classifier of
    width `num_labels` and, if given, that `id2label` (and the matching `label2id`) and
    `problem_type` ("single_label_classification", "multi_label_classification" or
    "regression") in its config.  Returns `path` as a `Path`.
    """
    if id2label is not None and len(id2label) != num_labels:
        raise ValueError(f"id2label has {len(id2label)} entries but num_labels={num_labels}")
    extra: dict[str, object] = {"num_labels": num_labels, "problem_type": problem_type}
    if id2label is not None:
        extra["id2label"] = {int(i): str(name) for i, name in id2label.items()}
        extra["label2id"] = {str(name): int(i) for i, name in id2label.items()}
    return _save_tiny(path, BertForSequenceClassification, vocab_words, seed, **extra)
