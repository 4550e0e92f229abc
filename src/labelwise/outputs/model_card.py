"""The model card: a ``README.md`` in the Hugging Face model-card style in every model dir.

``write_model_card(model_dir)`` reads the dir's ``labelwise.json`` and writes the card
through ``huggingface_hub.ModelCard``: its metadata (``ModelCardData``: ``library_name``,
``pipeline_tag``, ``tags``, ``base_model`` when the base is a hub model, and a
``model-index`` with the task, each evaluated split's data and fingerprint, and its
metrics), so the dir is ready to push, then sections: the task and labels with their
training counts, metrics per split, the limitations found after training
(``after_training`` in ``labelwise.json``: a class never predicted, a collapsed model, a run
that learned nothing, ...), thresholds, base model, training data, hyperparameters, and how
to load the model with
``transformers.pipeline`` and with ``labelwise.predict``.

:func:`labelwise.outputs.model_dir.save_model_dir` calls it with the label counts of the data in
memory; called alone, it reads the recorded data files again (when they are gone the card
says the counts are unavailable). Nothing heavy is imported: no torch, no transformers.

Every name that comes from the data (labels, columns, sources) is escaped: as text, Markdown
punctuation and HTML are escaped, and in code spans and blocks the fence is longer than any
run of backticks in the name, so a label such as ``<img src=x onerror=alert(1)>`` shows as
text in any CommonMark renderer.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from labelwise.errors import LabelwiseError
from labelwise.outputs.names import CARD as CARD_NAME
from labelwise.outputs.names import MANIFEST, not_a_model_dir
from labelwise.data.inspection import distribution as label_counts, inspect_recorded
from labelwise.plan.model_ref import DEFAULT_NAME

__all__ = ["CARD_NAME", "render_model_card", "write_model_card"]
_DIR = "path/to/this/model"


def write_model_card(model_dir: str | Path, *, plan: Any = None,
                     distribution: Mapping[str, Mapping[str, Any]] | None = None) -> Path:
    """Write ``README.md`` into a model dir.

    Args:
        model_dir: A dir written by ``labelwise train`` (or ``tune``'s ``best/``).
        plan: The run's resolved :class:`~labelwise.plan.preflight.Plan`: its data in memory give
            the label counts without reading any file.
        distribution: Per split label counts as :func:`labelwise.data.inspection.distribution`
            gives them. Without ``plan`` or ``distribution`` the recorded data files are
            read again.

    Returns:
        The path of the card.

    Raises:
        DataError: ``model_dir`` holds no ``labelwise.json``.
    """
    path = Path(model_dir)
    manifest_file = path / MANIFEST
    if not manifest_file.exists():
        raise not_a_model_dir(path)
    manifest = json.loads(manifest_file.read_text())
    why = ""
    if distribution is None and plan is not None:
        distribution = label_counts(plan.data)
    if distribution is None:
        try:
            distribution = inspect_recorded(manifest).distribution
        except LabelwiseError as err:
            why = str(err)
    card = path / CARD_NAME
    tmp = card.with_suffix(".md.tmp")
    tmp.write_text(render_model_card(manifest, distribution=distribution, unavailable=why),
                   encoding="utf-8")
    tmp.replace(card)
    return card


def render_model_card(manifest: Mapping[str, Any], *,
                      distribution: Mapping[str, Mapping[str, Any]] | None = None,
                      unavailable: str = "") -> str:
    """The text of the card for a ``labelwise.json`` manifest (see the module docstring)."""
    schema = manifest["schema"]
    task = schema["task"]
    plan = manifest.get("plan") or {}
    base, base_text = _base_model(plan.get("model") or {})
    names = list(schema["targets"] if task == "regression" else
                 [str(c) for c in schema["classes"]])
    train = (distribution or {}).get("train")
    body = ["", f"# {task} text classifier (labelwise)", "",
            (f"A `{task}` text classifier fine-tuned from {base_text} with "
             "[labelwise](https://pypi.org/project/labelwise/). Its label schema was read "
             "from the data and checked before training; the head, loss and decision rule "
             "below follow from it."), "",
            *_labels(task, schema, names, train, unavailable), "",
            *_metrics(manifest.get("metrics") or {}), "",
            *_limitations(manifest), "",
            *_thresholds(task, schema, manifest), "",
            "## Base model", "", f"Fine-tuned from {base_text}.", "",
            *_data(plan, schema), "",
            *_hyperparameters(plan, manifest), "",
            *_usage(task, manifest, names), ""]
    return _card(manifest, task, base, "\n".join(body))


MODEL_NAME = "labelwise-text-classifier"


def card_data(manifest: Mapping[str, Any]) -> Any:
    """The card's metadata as ``huggingface_hub.ModelCardData``: library, pipeline tag,
    tags, base model and a ``model-index`` holding one result per split and metric (the
    dataset named by its source, its revision the data fingerprint)."""
    from huggingface_hub import EvalResult, ModelCardData

    schema = manifest["schema"]
    task = schema["task"]
    plan = manifest.get("plan") or {}
    base, _ = _base_model(plan.get("model") or {})
    sources = plan.get("sources") or {}
    prints = plan.get("data_fingerprints") or {}
    results = []
    for split, values in (manifest.get("metrics") or {}).items():
        for metric, value in values.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            results.append(EvalResult(
                task_type="text-classification", task_name=f"{task} text classification",
                dataset_type="labelwise-data", dataset_name=str(sources.get(split, split)),
                dataset_split=split, dataset_revision=prints.get(split),
                metric_type=metric, metric_name=f"{metric} ({split})",
                metric_value=float(value)))
    return ModelCardData(library_name="transformers", pipeline_tag="text-classification",
                         tags=["labelwise", "text-classification", task],
                         base_model=base, model_name=MODEL_NAME,
                         eval_results=results or None)


def _card(manifest: Mapping[str, Any], task: str, base: str | None, body: str) -> str:
    from huggingface_hub import ModelCard

    data = card_data(manifest)
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")
    return str(card)


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def md(value: Any) -> str:
    """``value`` as Markdown text that renders as itself: HTML and Markdown punctuation
    escaped, one line."""
    text = " ".join(str(value).split())
    return _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def code(value: Any) -> str:
    """``value`` as an inline code span (HTML in a code span is text), fenced by more
    backticks than any run inside it."""
    text = " ".join(str(value).split())
    runs = [len(r) for r in re.findall(r"`+", text)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or runs else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _block(lines: list[str], lang: str = "python") -> list[str]:
    """A fenced code block whose fence no line can close."""
    runs = [len(r) for line in lines for r in re.findall(r"`{3,}", line)]
    fence = "`" * max(3, max(runs, default=0) + 1)
    return [f"{fence}{lang}", *lines, fence]


class Raw(str):
    """A table cell already in Markdown (not escaped again)."""


def _base_model(model: Mapping[str, Any]) -> tuple[str | None, str]:
    name = model.get("name_or_path")
    if model.get("default"):
        link = f"[{DEFAULT_NAME}](https://huggingface.co/{DEFAULT_NAME})"
        return DEFAULT_NAME, f"{link} (packaged with labelwise)"
    if name and not model.get("local"):
        return str(name), f"[{md(name)}](https://huggingface.co/{name})"
    return None, f"a local model directory ({code(name)})" if name else "an unrecorded model"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    def cell(v: Any) -> str:
        if isinstance(v, Raw):
            return str(v).replace("|", "\\|")
        return f"{v:.4g}" if isinstance(v, float) else "-" if v is None else md(v)

    return ["| " + " | ".join(md(h) for h in header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(cell(v) for v in row) + " |" for row in rows)]


def _labels(task: str, schema: Mapping[str, Any], names: list[str],
            train: Mapping[str, Any] | None, unavailable: str) -> list[str]:
    out = ["## Task and labels", "", f"Task: **{task}** ({md(schema.get('evidence', ''))}).",
           (f"Label column(s): {', '.join(code(c) for c in schema.get('columns', []))}; "
            f"format {code(schema.get('label_format'))}."), ""]
    if task == "binary":
        out += [f"Positive class: {code(schema['classes'][1])}.", ""]
    if train is None:
        counts_note = f" ({unavailable})" if unavailable else ""
        out += [(f"Training counts: unavailable (the training data could not be read"
                 f"{md(counts_note)})."), ""]
        train = {}
    if task == "regression":
        rows = [[n, *(train.get(n, {}).get(k) for k in ("mean", "sd", "min", "max"))]
                for n in names]
        return out + _table(["target", "train mean", "train sd", "train min", "train max"],
                            rows)
    if task == "multilabel":  # a row holds several labels: no shares that sum to 1
        return out + _table(["id", "label", "train rows with it"],
                            [[i, n, train.get(n)] for i, n in enumerate(names)])
    total = sum(train.get(n) or 0 for n in names) or None
    rows = [[i, n, train.get(n), f"{train[n] / total:.1%}" if total and n in train else None]
            for i, n in enumerate(names)]
    return out + _table(["id", "label", "train rows", "share"], rows)


def _metrics(metrics: Mapping[str, Mapping[str, Any]]) -> list[str]:
    splits = list(metrics)
    keys: list[str] = []
    for split in splits:
        keys += [k for k in metrics[split] if k not in keys]
    if not keys:
        return ["## Metrics", "", "No metrics were recorded."]
    rows = [[Raw(k), *(metrics[s].get(k) for s in splits)] for k in keys]  # labelwise's names
    return ["## Metrics", "", ("Computed by labelwise on each split after training (test "
                               "metrics use the thresholds chosen on validation)."), "",
            *_table(["metric", *splits], rows)]


def _limitations(manifest: Mapping[str, Any]) -> list[str]:
    out = ["## Limitations found after training", ""]
    saved = manifest.get("after_training")
    if saved is None:
        why = ("The model was retrained on train + validation (`search.refit`): no "
               "validation rows were left to check it on." if manifest.get("refit") else
               "Not recorded for this model.")
        return [*out, why]
    findings = saved.get("findings") or []
    if not findings:
        return [*out, ("None found on validation: every class is predicted, the model did not "
                       "collapse, its losses are below the label prior's, no threshold sits at "
                       "an edge, and validation is close to training.")]
    rows = [[f["code"], f["message"], f.get("fix", "")] for f in findings]
    return [*out, "Checked by labelwise on the validation split after training:", "",
            *_table(["code", "finding", "fix"], rows)]


def _thresholds(task: str, schema: Mapping[str, Any], manifest: Mapping[str, Any]
                ) -> list[str]:
    contract = manifest.get("contract") or {}
    out = ["## Thresholds", ""]
    saved = manifest.get("thresholds")
    if task not in ("binary", "multilabel") or not saved:
        rule = contract.get("decision_rule", "argmax")
        return [*out, f"None: the decision rule is {code(rule)}."]
    labels = ([str(schema["classes"][1])] if task == "binary"
              else [str(c) for c in schema["classes"]])
    rows = [[n, v, m, f] for n, v, m, f in zip(labels, saved["values"], saved["methods"],
                                               saved["f1"], strict=False)]
    return out + ["A label is predicted when its score is at least its threshold.", "",
                  *_table(["label", "threshold", "method", "validation F1"], rows)]


def _data(plan: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    sources = plan.get("sources") or {}
    prints = plan.get("data_fingerprints") or {}
    rows = [[s, sources.get(s), prints.get(s)] for s in dict.fromkeys([*sources, *prints])]
    carve = plan.get("carve")
    out = ["## Training data", "", f"Label schema fingerprint: {code(schema.get('fingerprint'))}.",
           "", *_table(["split", "source", "fingerprint"], rows)]
    if carve:
        out += ["", f"The validation split was carved from train: {code(json.dumps(carve))}."]
    return out


def _hyperparameters(plan: Mapping[str, Any], manifest: Mapping[str, Any]) -> list[str]:
    train = (plan.get("config") or {}).get("train") or {}
    contract = manifest.get("contract") or {}
    out = ["## Hyperparameters", ""]
    if "trial" in manifest:
        params = json.dumps(manifest.get("params") or {})
        out += [f"Chosen by hyperparameter search (trial {manifest['trial']}): {code(params)}.",
                ""]
    decided = {d.get("key"): d for d in plan.get("decisions") or []}
    start = ""
    if "head_bias" in decided:
        d = decided["head_bias"]
        start = f" New head, bias at start: {md(d['value'])} ({md(d['reason'])})."
    out += [(f"Head: {code(contract.get('problem_type'))}, {contract.get('num_labels')} "
             f"outputs, loss {code(contract.get('loss'))}, max length "
             f"{manifest.get('max_length')}.{start}"), ""]
    return out + _table(["train setting", "value"],
                        [[Raw(k), Raw(code(json.dumps(v)))] for k, v in train.items()])


def _usage(task: str, manifest: Mapping[str, Any], names: list[str]) -> list[str]:
    thr = (manifest.get("thresholds") or {}).get("values") or []
    one_logit = (manifest.get("contract") or {}).get("num_labels") == 1 and task == "binary"
    if task == "multilabel":
        saved = {n: round(float(v), 6) for n, v in zip(names, thr, strict=False)}
        snippet = ['clf = pipeline("text-classification", model=MODEL_DIR, top_k=None)',
                f"thresholds = {json.dumps(saved)}  # the saved per-label thresholds",
                'rows = clf(["a text to label"])',
                'labels = [[s["label"] for s in row if s["score"] >= thresholds[s["label"]]]',
                "          for row in rows]"]
        say = ("The scores are independent sigmoid probabilities, one per label (they do not "
               "sum to 1), so ask for all of them with `top_k=None` and compare each to its "
               "saved per-label threshold (table above); the pipeline alone applies none.")
    elif task == "binary":
        t = round(float(thr[0]), 6) if thr else 0.5
        pos, neg = json.dumps(names[1]), json.dumps(names[0])
        snippet = ['clf = pipeline("text-classification", model=MODEL_DIR, top_k=None)',
                'scores = {s["label"]: s["score"] for s in clf(["a text to label"])[0]}',
                f"label = {pos} if scores[{pos}] >= {t} else {neg}"]
        say = (f"This one-logit head gives one sigmoid score, for {code(names[1])}; compare it "
               f"to the tuned threshold {t}." if one_logit else
               f"The pipeline's top label is the argmax (a 0.5 cut); apply the tuned "
               f"threshold {t} on the score of {code(names[1])} as below.")
    elif task == "regression":
        snippet = [('reg = pipeline("text-classification", model=MODEL_DIR, top_k=None, '
                 'function_to_apply="none")'),
                f'reg(["a text to score"])  # one value per target: {json.dumps(names)}']
        say = "Pass `function_to_apply=\"none\"` to get the raw predicted values."
    else:
        snippet = ['clf = pipeline("text-classification", model=MODEL_DIR)',
                'clf(["a text to label"])  # [{"label": ..., "score": ...}]']
        say = "The top label is the argmax of the softmax scores."
    return ["## How to use", "", "With Transformers (the labels come back as their names). "
            + say, "", *_block(["from transformers import pipeline", "",
                                f'MODEL_DIR = "{_DIR}"  # this directory', *snippet]), "",
            "With labelwise (applies the saved thresholds and decision rule):", "",
            *_block(["import labelwise", "", f'MODEL_DIR = "{_DIR}"  # this directory',
                     'preds = labelwise.predict(MODEL_DIR, ["a text to label"])',
                     "preds.labels, preds.scores"])]
