"""Errors in the caller's terms: one mapping from Python keywords to CLI flags.

A message names an option once, as its flag; a Python caller reads the keyword
(``overwrite=True``), the CLI the flag (``--overwrite``).
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import labelwise
from labelwise.cli.app import app
from labelwise.errors import ConfigError, LabelwiseError, OutputError
from labelwise.findings import OPTIONS, Finding, for_caller

PACKAGE = Path(labelwise.__file__).parent
FLAG = re.compile(r"--([a-z][a-z0-9-]*)")
# flags of the command line alone: no Python keyword takes their place
CLI_ONLY = {"--format", "--debug", "--search", "--no-search", "--report", "--no-report",
            "--nproc"}  # --nproc_per_node: torchrun's


def _text(node: ast.AST) -> str:
    """The literal text of a call's arguments (f-string parts joined by a placeholder)."""
    parts = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            parts.append(sub.value)
    return " ".join(parts)


def _code(call: ast.Call) -> str | None:
    for kw in call.keywords:
        if kw.arg == "code" and isinstance(kw.value, ast.Constant):
            return kw.value.value
    for arg in call.args[:1]:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and \
                re.fullmatch(r"LW\d{3}", arg.value):
            return arg.value
    return None


def _messages_naming_options() -> dict[str, list[tuple[str, str]]]:
    """``{code: [(file:line, text), ...]}`` for every LW-coded error or finding whose text
    names a ``--flag`` (the command line itself is left out: it speaks its flags)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "cli" or rel.name == "_worker.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and (code := _code(node)):
                text = _text(node)
                if FLAG.search(text):
                    out.setdefault(code, []).append((f"{rel}:{node.lineno}", text))
    return out


MESSAGES = _messages_naming_options()


def test_the_scan_finds_the_messages_it_should():
    assert {"LW119", "LW330", "LW331", "LW334", "LW408"} <= set(MESSAGES)
    assert len(MESSAGES) >= 15


@pytest.mark.parametrize("code", sorted(MESSAGES))
def test_every_option_a_message_names_has_a_python_keyword(code):
    flags = {f"--{flag}": name for name, (flag, _, _) in OPTIONS.items()
             for flag in [flag[2:]]}
    for where, text in MESSAGES[code]:
        named = {"--" + m for m in FLAG.findall(text)} - CLI_ONLY
        unknown = named - set(flags)
        assert not unknown, f"{code} at {where} names {unknown}, which OPTIONS does not map"
        python = for_caller(text, "python")
        assert not named & {"--" + m for m in FLAG.findall(python)}, (where, python)
        for flag in named:
            _, kind, values = OPTIONS[flags[flag]]
            # a CLI-only option with a Python call as its twin is named by that call
            assert (values[0] if kind == "call" else flags[flag]) in python, (where, python)
        assert for_caller(text, "cli") == text


@pytest.mark.parametrize("text, python", [
    ("pass --overwrite to replace it, or choose another --output-dir",
     "pass overwrite=True to replace it, or choose another output_dir="),
    ("pass --task multiclass.", "pass task='multiclass'."),
    ("check that the right --label-column was chosen",
     "check that the right label_columns= was chosen"),
    ("use --backend optuna or --backend ray", "use backend='optuna' or backend='ray'"),
    ("--workers 3 needs 3 GPU slots", "workers=3 needs 3 GPU slots"),
    ("review them (--label-errors-out FILE.csv)",
     "review them (LabelErrors.write_csv('FILE.csv'))"),
    ("write it as --set train.learning_rate=3e-5",
     "write it as config={'train': {'learning_rate': 3e-5}}"),
    ("pass --format json", "pass --format json"),  # no Python twin: left as it is
])
def test_rendering(text, python):
    assert for_caller(text, "python") == python


def test_every_keyword_in_the_mapping_is_a_parameter_of_a_verb():
    from labelwise.tuning import tune
    from labelwise.training.predict import predict

    params = set()
    for verb in (labelwise.train, tune, predict, labelwise.check, labelwise.inspect_data,
                 labelwise.predict_file, labelwise.export, labelwise.find_label_errors):
        params |= set(inspect.signature(verb).parameters)
    keywords = {name for name, (_, kind, _) in OPTIONS.items() if kind != "call"}
    assert keywords - {"study"} <= params | {"join", "storage", "workers"}


def test_a_python_caller_reads_keywords(tmp_path, tiny_model):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    frame = pd.DataFrame({"text": ["good film", "bad plot"] * 10, "label": ["p", "n"] * 10})
    with pytest.raises(OutputError) as err:
        labelwise.train(train=frame, output_dir=out, model=str(tiny_model), max_steps=1)
    assert err.value.code == "LW331"
    assert "pass overwrite=True to replace it, or choose another output_dir=" in str(err.value)
    assert "--" not in str(err.value)
    assert (out / "keep.txt").read_text() == "mine"


def test_preflight_findings_read_keywords_in_python_and_flags_in_the_cli(tmp_path,
                                                                        tiny_model):
    data = tmp_path / "train.csv"
    pd.DataFrame({"text": ["a b", "c d", "e f"] * 10,
                  "label": ["x", "y", "z"] * 10}).to_csv(data, index=False)
    with pytest.raises(LabelwiseError) as err:
        labelwise.check(train=str(data), task="binary", model=str(tiny_model))
    assert "task='multiclass'" in str(err.value) and "--task" not in str(err.value)
    result = CliRunner().invoke(app, ["check", "--train", str(data), "--task", "binary",
                                      "--model", str(tiny_model)])
    assert result.exit_code == 2
    assert "--task multiclass" in result.output and "task='multiclass'" not in result.output


def test_the_cli_prints_flags(tmp_path, tiny_model):
    data = tmp_path / "train.csv"
    pd.DataFrame({"text": ["a b", "c d"] * 10, "label": ["x", "y"] * 10}).to_csv(data,
                                                                                index=False)
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = CliRunner().invoke(app, ["train", "--train", str(data), "--model",
                                      str(tiny_model), "--output-dir", str(out)])
    assert result.exit_code == 2
    assert "LW331" in result.output and "--overwrite" in result.output
    assert "overwrite=True" not in result.output


def test_a_finding_renders_for_either_caller():
    finding = Finding("LW119", "error", "ambiguous", fix="pass --task multilabel")
    assert finding.render().endswith("Fix: pass task='multilabel'")
    assert finding.render("cli").endswith("Fix: pass --task multilabel")


@pytest.mark.parametrize("role, keyword, flag", [
    ("text", "text_column=", "--text-column"), ("label", "label_columns=", "--label-column")])
def test_a_missing_column_names_the_option_either_way(role, keyword, flag):
    # LW402 builds its flag from the column's role, which the scan above cannot read
    from labelwise.errors import DataError

    frame = pd.DataFrame({"body": ["a", "b"] * 5, "y": ["p", "n"] * 5})
    given = {"text_column": "body"} if role == "label" else {"label_columns": ["y"]}
    with pytest.raises(DataError) as err:
        labelwise.inspect_data(train=frame, **given)
    assert err.value.code == "LW402"
    assert keyword in str(err.value) and flag not in str(err.value)
    assert flag in err.value.render("cli")
