"""`labelwise inspect` as a user runs it: exit codes, JSON, no traceback, real data."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from labelwise.cli.app import app

runner = CliRunner()


def write(tmp_path, labels, name="train.csv", column="label"):
    path = tmp_path / name
    pd.DataFrame({"text": [f"{name} row {i}" for i in range(len(labels))],
                  column: labels}).to_csv(path, index=False)
    return path


def lw(*args):
    return subprocess.run([sys.executable, "-m", "labelwise.cli.app", *map(str, args)],
                          capture_output=True, text=True)


def test_clean_data_exits_0_and_prints_schema(tmp_path):
    train = write(tmp_path, ["neg", "pos"] * 20)
    valid = write(tmp_path, ["neg", "pos"] * 3, "valid.csv")
    result = runner.invoke(app, ["inspect", str(train), "--valid", str(valid)])
    assert result.exit_code == 0, result.output
    assert "task         binary" in result.output
    assert "no findings" in result.output


def test_error_finding_exits_2_without_traceback(tmp_path):
    train = write(tmp_path, ["neg", "pos"] * 20 + ["neutral"])
    proc = lw("inspect", train, "--task", "binary")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "LW115 task 'binary' was asked" in " ".join(proc.stdout.split())


def test_json_output_has_the_promised_keys(tmp_path):
    train = write(tmp_path, ["a", "b", "c"] * 10 + ["a "])
    result = runner.invoke(app, ["inspect", str(train), "--format", "json"])
    assert result.exit_code == 2
    out = json.loads(result.stdout)
    assert out["task"] == "multiclass" and out["num_labels"] == 4
    assert out["classes"] == ["a", "a ", "b", "c"]
    assert len(out["fingerprint"]) == 16
    finding = next(f for f in out["findings"] if f["code"] == "LW106")
    assert set(finding) == {"level", "code", "message", "where", "fix"}
    assert finding["level"] == "error"
    assert out["carve"]["method"] == "stratified"


@pytest.mark.parametrize("args, message", [
    (["inspect", "{tmp}/missing.csv"], "train file not found"),
    (["inspect", "{train}", "--label-column", "lable"], "did you mean 'label'?"),
    (["inspect", "{train}", "--format", "yaml"], "unknown --format 'yaml'"),
    (["inspect", "{train}", "--task", "binray"], "unknown task 'binray'"),
])
def test_unusable_input_exits_2_with_one_line(tmp_path, args, message):
    train = write(tmp_path, ["neg", "pos"] * 10)
    args = [a.format(tmp=tmp_path, train=train) for a in args]
    proc = lw(*args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in " ".join(proc.stderr.split()) + " ".join(proc.stdout.split())
    assert "Traceback" not in proc.stderr


def test_internal_fault_exits_1(tmp_path, monkeypatch):
    import labelwise.data.inspection

    def boom(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(labelwise.data.inspection, "inspect_data", boom)
    train = write(tmp_path, ["neg", "pos"] * 10)
    result = runner.invoke(app, ["inspect", str(train)])
    assert result.exit_code == 1
    assert "internal error: RuntimeError: boom" in " ".join(result.output.split())


def test_several_label_columns_comma_or_repeated(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"text": [f"t{i}" for i in range(20)], "V": [1.5 + i / 10 for i in range(20)],
                  "A": [2.5 - i / 20 for i in range(20)]}).to_csv(path, index=False)
    for flags in (["--label-column", "V,A"], ["--label-column", "V", "--label-column", "A"]):
        result = runner.invoke(app, ["inspect", str(path), *flags, "--format", "json"])
        assert json.loads(result.stdout)["schema"]["targets"] == ["V", "A"]


EXPECTED = [
    # dataset, files, extra flags, task, num_labels, finding codes that must show
    ("sst2", "csv", [], "binary", 2, set()),
    ("ag_news", "csv", [], "multiclass", 4, set()),
    ("trec", "csv", [], "multiclass", 6, set()),
    ("trec", "csv", ["--label-column", "label_fine"], "multiclass", 50,
     {"LW103", "LW104", "LW105"}),
    ("go_emotions", "jsonl", ["--label-column", "labels"], "multilabel", 28, {"LW105"}),
    ("emobank", "csv", ["--label-column", "V,A,D"], "regression", 3, set()),
]


@pytest.mark.parametrize("name, ext, flags, task, num_labels, codes", EXPECTED)
def test_shared_datasets(shared_data, name, ext, flags, task, num_labels, codes):
    d = shared_data / name
    result = runner.invoke(app, ["inspect", str(d / f"train.{ext}"), "--valid",
                                 str(d / f"validation.{ext}"), "--test", str(d / f"test.{ext}"),
                                 *flags, "--format", "json"])
    out = json.loads(result.stdout)
    assert (out["task"], out["num_labels"]) == (task, num_labels)
    assert codes <= {f["code"] for f in out["findings"]}
    assert result.exit_code == 0  # real data: warnings and info, no error


def test_shared_facts_quoted(shared_data):
    d = shared_data / "trec"
    result = runner.invoke(app, ["inspect", str(d / "train.csv"), "--test", str(d / "test.csv"),
                                 "--valid", str(d / "validation.csv"),
                                 "--label-column", "label_fine", "--format", "json"])
    out = json.loads(result.stdout)
    absent = next(f for f in out["findings"] if f["code"] == "LW104")
    assert absent["message"].startswith("8 train class(es) never occur in test: 'ENTY:cremat'")
    rare = next(f for f in out["findings"] if f["code"] == "LW105")
    assert "'ENTY:religion' (2), 'ENTY:currency' (3), 'NUM:code' (6), 'NUM:ord' (6)" in \
        rare["message"]
    d = shared_data / "go_emotions"
    result = runner.invoke(app, ["inspect", str(d / "train.jsonl"), "--label-column", "labels",
                                 "--valid", str(d / "validation.jsonl"), "--format", "json"])
    rare = next(f for f in json.loads(result.stdout)["findings"] if f["code"] == "LW105")
    assert "'grief' (14), 'pride' (16)" in rare["message"]


HOSTILE = {
    "dup.csv": (b"text,label,label\na,0,1\nb,1,0\n", "LW410", "two columns named 'label'"),
    "mixed.csv": (b"text,label\na,0\nb,1\nc,neutral\nd,1\n", "LW118", "mixes label forms"),
    "latin.csv": ("text,label\ncaf\xe9,0\nb,1\n".encode("latin-1"), "LW412",
                  "re-save it as UTF-8"),
    "bad.jsonl": (b'{"text": "a", "label": 0}\n{"text": "b", label: 1}\n', "LW413",
                  "line 2 is not JSON"),
    "ids.jsonl": (b'{"text": "a", "label": [0, 2]}\n{"text": "b", "label": [1, 0]}\n'
                  b'{"text": "c", "label": [2, 1]}\n', "LW129", "multiclass-multioutput"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_file_exits_2_in_text_and_json_and_writes_nothing(tmp_path, name):
    content, code, message = HOSTILE[name]
    path = tmp_path / name
    path.write_bytes(content)
    result = runner.invoke(app, ["inspect", str(path)])
    assert result.exit_code == 2
    assert code in result.output and message in " ".join(result.output.split())
    result = runner.invoke(app, ["inspect", str(path), "--format", "json"])
    assert result.exit_code == 2
    out = json.loads(result.stdout)
    assert out["ok"] is False and out["findings"][0]["code"] == code
    assert message in out["findings"][0]["message"] + out["findings"][0]["fix"]
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_symlink_loop_in_json_says_loop(tmp_path):
    (tmp_path / "a.csv").symlink_to(tmp_path / "b.csv")
    (tmp_path / "b.csv").symlink_to(tmp_path / "a.csv")
    result = runner.invoke(app, ["inspect", str(tmp_path / "a.csv"), "--format", "json"])
    assert result.exit_code == 2
    finding = json.loads(result.stdout)["findings"][0]
    assert (finding["code"], finding["message"]) == ("LW411", "train path is a symlink loop")


@pytest.mark.parametrize("name", ["dup.csv", "mixed.csv", "latin.csv", "ids.jsonl"])
def test_train_on_hostile_file_exits_2_and_creates_no_output(tmp_path, name):
    content, code, _ = HOSTILE[name]
    path = tmp_path / name
    path.write_bytes(content)
    out = tmp_path / "out"
    result = runner.invoke(app, ["train", "--train", str(path), "--valid", str(path), "-o",
                                 str(out)])
    assert result.exit_code == 2, result.output
    assert code in result.output and "Traceback" not in result.output
    assert not out.exists()
