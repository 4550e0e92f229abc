"""Training only the word-embedding rows the data uses trains the same model as training all
of them; the lazy gradient clipping clips exactly as ``clip_grad_norm_`` does."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.numpy import load_file
from torch import nn

from labelwise.plan.preflight import preflight
from labelwise.plan.config import config_from_dict
from labelwise.training.embedding_rows import UsedRowsEmbedding, cut_word_embeddings, used_token_ids
from labelwise.training.trainer import clip_gradients
from labelwise.training.train import train
from test_training import make_config

WORD_EMBEDDINGS = "bert.embeddings.word_embeddings.weight"


def trained_weights(config, name, **train_section):
    """Train ``config`` with ``train_section`` on top, into its own output dir."""
    raw = config.model_dump()
    raw["train"].update(train_section)
    raw["output_dir"] = f"{raw['output_dir']}-{name}"
    result = train(config_from_dict(raw))
    return load_file(str(result.output_dir / "model.safetensors")), result


@pytest.fixture
def config(tmp_path, tiny_model):
    return make_config(tmp_path, tiny_model, "multiclass", train={"max_steps": 6})


@pytest.fixture(scope="module")
def base_embeddings(tiny_model):
    weights = load_file(str(tiny_model / "model.safetensors"))  # a BertModel: no "bert."
    return weights[WORD_EMBEDDINGS.removeprefix("bert.")]


def test_used_rows_train_the_same_model_as_all_rows(config, base_embeddings):
    used, result = trained_weights(config, "used")
    whole, whole_result = trained_weights(config, "all", embedding_rows="all")
    whole_stats = whole_result.stats
    assert used.keys() == whole.keys()
    for key in used:
        np.testing.assert_allclose(used[key], whole[key], rtol=1e-5, atol=1e-6, err_msg=key)
    # the saved matrix has every row; the rows of tokens in no split moved in neither run
    emb = used[WORD_EMBEDDINGS]
    assert emb.shape == base_embeddings.shape
    moved = np.abs(emb - base_embeddings).max(axis=1) > 0
    assert 5 < moved.sum() < len(emb) // 2
    assert (np.abs(whole[WORD_EMBEDDINGS] - base_embeddings).max(axis=1) > 0).sum() == \
        moved.sum()
    decisions = {d.key: d.value for d in result.plan.decisions}
    assert decisions["embedding_rows"] == "tokens in train and valid"
    # the rows trained: the moved ones and the special tokens no loss reaches ([PAD], ...)
    assert moved.sum() < result.stats["embedding_rows_trained"] <= moved.sum() + 5
    assert whole_stats["embedding_rows_trained"] == "all"


def test_weight_decay_trains_every_row(config, base_embeddings):
    weights, result = trained_weights(config, "decay", weight_decay=0.1)
    moved = np.abs(weights[WORD_EMBEDDINGS] - base_embeddings).max(axis=1) > 0
    nonzero = np.abs(base_embeddings).max(axis=1) > 0  # the padding row is all zeros
    assert moved[nonzero].all()  # decoupled weight decay shrinks rows no batch holds
    decisions = {d.key: (d.value, d.reason) for d in result.plan.decisions}
    assert decisions["embedding_rows"][0] == "all"
    assert result.stats["embedding_rows_trained"] == "all"
    assert "weight decay 0.1" in decisions["embedding_rows"][1]


def test_the_plan_says_all_rows_when_configured(tmp_path, tiny_model):
    config = make_config(tmp_path, tiny_model, "binary", train={"embedding_rows": "all"})
    decisions = {d.key: (d.value, d.reason) for d in preflight(config).decisions}
    assert decisions["embedding_rows"] == ("all", "config (train.embedding_rows: all)")


def test_an_id_outside_the_kept_rows_is_refused():
    full = nn.Embedding(10, 4)
    layer = UsedRowsEmbedding(full, torch.tensor([0, 3, 7]))
    np.testing.assert_array_equal(layer(torch.tensor([7, 0])).detach(),
                                  full.weight.detach()[[7, 0]])
    with pytest.raises(IndexError):
        layer(torch.tensor([5]))


class _Tied(nn.Module):
    def __init__(self, tied: bool) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.out = nn.Linear(4, 10, bias=False)
        if tied:
            self.out.weight = self.emb.weight

    def get_input_embeddings(self):
        return self.emb

    def set_input_embeddings(self, module):
        self.emb = module

    def get_output_embeddings(self):
        return self.out


def test_tied_or_whole_matrices_are_not_cut():
    keep = np.array([0, 2, 5])
    assert cut_word_embeddings(_Tied(tied=True), keep) is None
    assert cut_word_embeddings(_Tied(tied=False), np.arange(10)) is None
    model = _Tied(tied=False)
    cut = cut_word_embeddings(model, keep)
    assert isinstance(model.emb, UsedRowsEmbedding) and cut.rows == 3
    with torch.no_grad():
        model.emb.weight.add_(1.0)
    before = cut.full.weight.detach().clone()
    cut.restore()
    assert type(model.emb) is nn.Embedding
    np.testing.assert_allclose(model.emb.weight.detach()[keep], before[keep] + 1.0)
    np.testing.assert_array_equal(model.emb.weight.detach()[[1, 3, 4]], before[[1, 3, 4]])


@given(st.lists(st.lists(st.integers(0, 50), max_size=8), max_size=5),
       st.lists(st.integers(0, 50), max_size=3))
def test_used_token_ids_are_the_sorted_union(arrays, special):
    got = used_token_ids(*(np.array(a, dtype=np.int64) for a in arrays), special_ids=special)
    assert got.tolist() == sorted({i for a in arrays for i in a} | set(special))


@settings(max_examples=60, deadline=None)
@given(st.floats(0.05, 20.0), st.integers(0, 2**16))
def test_lazy_clipping_equals_clip_grad_norm(scale, seed):
    gen = torch.Generator().manual_seed(seed)
    shapes = [(7, 3), (5,), (2, 2, 2)]
    grads = [torch.randn(s, generator=gen) * scale / 4 for s in shapes]
    ours = [nn.Parameter(torch.zeros(s)) for s in shapes]
    theirs = [nn.Parameter(torch.zeros(s)) for s in shapes]
    for p, q, g in zip(ours, theirs, grads):
        p.grad, q.grad = g.clone(), g.clone()
    norm_ours = clip_gradients(ours, 1.0)
    norm_theirs = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert torch.equal(norm_ours, norm_theirs)
    for p, q in zip(ours, theirs):
        assert torch.equal(p.grad, q.grad)  # bit for bit, clipped or not


@settings(max_examples=100, deadline=None)
@given(arrays=st.lists(st.lists(st.integers(-3, 70), max_size=40), max_size=4),
       specials=st.lists(st.integers(0, 80), max_size=3), scan=st.integers(1, 9))
def test_used_token_ids_is_unique_of_every_id(arrays, specials, scan):
    from labelwise.training import embedding_rows

    parts = [np.asarray(a, dtype=np.int32) for a in arrays]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(embedding_rows, "_SCAN", scan)  # slices end inside the arrays
        got = embedding_rows.used_token_ids(*parts, special_ids=specials)
    want = np.unique(np.concatenate([*(p.astype(np.int64) for p in parts),
                                     np.asarray(specials, dtype=np.int64)]))
    assert got.dtype == np.int64 and got.tolist() == want.tolist()


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.text(max_size=5), st.integers(),
                                 st.floats(allow_nan=True)), max_size=25),
       dtype=st.sampled_from(["str", "object"]), chunk=st.integers(1, 7))
def test_text_slices_read_what_texts_reads(values, dtype, chunk):
    import pandas as pd

    from labelwise.data.loading import Texts

    if dtype == "str":
        values = [v if v is None or isinstance(v, str) else str(v) for v in values]
    series = pd.Series(values, dtype=dtype)
    texts = Texts(series)
    texts.CHUNK = chunk
    whole = [str(t) for t in series.tolist()]
    assert len(texts) == len(whole) and list(texts) == whole
    assert texts[2:9] == whole[2:9] and all(texts[i] == whole[i] for i in range(len(whole)))
