"""The model card: Hub metadata with a valid model-index, and every name from the data escaped."""

from __future__ import annotations

import re

import pytest
from huggingface_hub import ModelCard
from markdown_it import MarkdownIt

from labelwise.labels.schema import infer_schema
from labelwise.outputs.model_card import code, md, render_model_card

EVIL = "<img src=x onerror=alert(1)>"
LABELS = [EVIL, "a|b", "`tick`", "**bold**", "[link](javascript:alert(1))"]


def manifest(labels=LABELS, task="multiclass", column="<script>alert(2)</script>"):
    schema = infer_schema([*labels, *labels], columns=column, task=task)
    metrics = {"valid": {"accuracy": 0.5, "macro_f1": 0.25, "n": 10},
               "test": {"accuracy": 0.75, "macro_f1": 0.5, "n": 10}}
    plan = {"model": {"name_or_path": "org/<b>base</b>", "local": False, "default": False},
            "sources": {"train": "DataFrame, 10 rows, sha 1111", "valid": "<valid>.csv",
                        "test": "test.csv"},
            "data_fingerprints": {"train": "aaaa", "valid": "bbbb", "test": "cccc"},
            "config": {"train": {"learning_rate": 5e-5}},
            "decisions": [{"key": "head_bias", "value": "model init", "reason": "softmax"}]}
    return {"schema": schema.to_dict(), "plan": plan, "metrics": metrics,
            "contract": {"problem_type": "single_label_classification", "num_labels": 5,
                         "loss": "cross_entropy", "decision_rule": "argmax"},
            "max_length": 64}


def _html(card: str) -> str:
    body = card.split("---", 2)[2]
    return MarkdownIt("commonmark").enable("table").render(body)


def test_no_name_from_the_data_becomes_live_html():
    card = render_model_card(manifest(), distribution={"train": {n: 2 for n in LABELS}})
    page = _html(card)
    assert "<img" not in page and "<script" not in page and "<b>" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page  # shown, as text
    assert 'href="javascript' not in page and "<strong>bold" not in page
    # the labels table keeps 5 rows of 4 cells: the pipe in "a|b" did not split a cell
    rows = re.findall(r"<tr>(.*?)</tr>", page, flags=re.S)
    label_rows = [r for r in rows if "<td>" in r and r.count("<td>") == 4]
    assert len(label_rows) == 5


def test_the_usage_snippets_stay_valid_python_with_such_labels():
    card = render_model_card(manifest(labels=[EVIL, 'say "hi"'], task="binary"))
    blocks = re.findall(r"(`{3,})python\n(.*?)\n\1", card, flags=re.S)
    assert len(blocks) == 2
    for _, block in blocks:
        compile(block, "README.md", "exec")
    assert "<img" not in _html(card).replace("&lt;img", "")


def test_the_metadata_is_a_hub_model_index():
    card = ModelCard(render_model_card(manifest()))
    data = card.data
    assert data.library_name == "transformers" and data.pipeline_tag == "text-classification"
    assert data.base_model == "org/<b>base</b>"
    assert {"labelwise", "multiclass"} <= set(data.tags)
    results = {(r.dataset_split, r.metric_type): r for r in data.eval_results}
    assert set(results) == {(s, m) for s in ("valid", "test") for m in ("accuracy", "macro_f1",
                                                                         "n")}
    test_f1 = results[("test", "macro_f1")]
    assert test_f1.metric_value == 0.5 and test_f1.task_type == "text-classification"
    assert test_f1.dataset_revision == "cccc" and test_f1.dataset_name == "test.csv"
    assert results[("valid", "accuracy")].dataset_revision == "bbbb"
    front = card.content.split("---")[1]
    assert "model-index:" in front


@pytest.mark.parametrize("text", ["plain", "a`b", "``x", "<b>", "x|y"])
def test_code_spans_hold_any_text(text):
    page = MarkdownIt("commonmark").render(code(text)).strip()
    inner = re.fullmatch(r"<p><code>(.*)</code></p>", page).group(1)
    assert inner.strip() == text.replace("<", "&lt;").replace(">", "&gt;")


def test_md_shows_text_as_written():
    for text in ["*a*", "_b_", "<i>x</i>", "a|b", "[x](y)", "~~s~~", "`c`"]:
        page = MarkdownIt("commonmark").enable("strikethrough").render(md(text))
        assert page.strip() == "<p>" + text.replace("<", "&lt;").replace(">", "&gt;") + "</p>"
