"""The HTML report and the model card, on tiny-BERT runs; the report rendered in Chromium."""

from __future__ import annotations

import json
import random
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from labelwise.cli.app import app
from labelwise.plan.config import config_from_dict
from labelwise.errors import DataError
from labelwise.report.html import write_report
from labelwise.training.train import train
from labelwise.tuning import tune

WORDS = "good bad great awful fine film movie plot story funny boring sad happy".split()
PLOT_DIV = re.compile(r'<div class="plot" id="(plot-[a-z-]+)" data-plot="([a-z-]+)">')
COMMON = {"plot-label-distribution", "plot-curves"}
EXPECTED = {
    "multiclass": COMMON | {"plot-confusion"},
    "multilabel": COMMON | {"plot-per-label", "plot-thresholds"},
    "search": COMMON | {"plot-confusion", "plot-thresholds", "plot-history",
                        "plot-importance", "plot-parallel"},
}
runner = CliRunner()


def _write(path: Path, n: int, labels, seed: int) -> str:
    rnd = random.Random(seed)
    texts = [" ".join(rnd.choice(WORDS) for _ in range(rnd.randint(2, 7))) for _ in range(n)]
    pd.DataFrame({"text": texts, **labels(n)}).to_csv(path, index=False)
    return str(path)


LABELS = {
    "multiclass": ({}, lambda n: {"label": [["a", "b", "c"][i % 3] for i in range(n)]}),
    "multilabel": ({"label_columns": ["labels"]},
                   lambda n: {"labels": [json.dumps([["x"], ["y"], ["x", "y"], []][i % 4])
                                         for i in range(n)]}),
    "binary": ({}, lambda n: {"label": [["neg", "pos"][i % 2] for i in range(n)]}),
}


def _config(root: Path, tiny_model: Path, task: str, **sections) -> object:
    root.mkdir(parents=True, exist_ok=True)
    extra, labels = LABELS[task]
    data = {"train": _write(root / "train.csv", 48, labels, 1),
            "valid": _write(root / "valid.csv", 24, labels, 2),
            "test": _write(root / "test.csv", 12, labels, 3), **extra}
    return config_from_dict({"data": data, "model": {"name_or_path": str(tiny_model),
                                                     "max_length": 32},
                             "train": {"max_steps": 4, "batch_size": 8, "evals_per_epoch": 2},
                             "output_dir": str(root / "out"), **sections})


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model) -> dict[str, Path]:
    """A multiclass and a multilabel training run and a 3-trial binary search."""
    root = tmp_path_factory.mktemp("report")
    out: dict[str, Path] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LABELWISE_CACHE", str(root / "cache"))
        for task in ("multiclass", "multilabel"):
            out[task] = train(_config(root / task, tiny_model, task)).output_dir
        search = {"n_trials": 3, "pruner": "none",
                  "objective": {"metric": "f1", "direction": "maximize"},
                  "space": {"train.learning_rate": {"type": "float", "low": 1e-4,
                                                    "high": 1e-2, "log": True},
                            "train.batch_size": {"type": "categorical", "choices": [8, 16]}}}
        config = _config(root / "search", tiny_model, "binary", search=search)
        out["search"] = tune(config).output_dir
        for name in ("multiclass", "multilabel", "search"):
            write_report(out[name])
    return out


def _plot_ids(page: str) -> set[str]:
    return {m.group(1) for m in PLOT_DIV.finditer(page)}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_report_is_self_contained_with_every_plot(runs, name):
    page = (runs[name] / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"<script[^>]*\ssrc=", page)  # plotly.js is inlined, not fetched
    assert not re.search(r"<link[^>]*\shref=", page)
    assert page.count("plotly.js v") == 1  # inlined once, not once per plot
    assert _plot_ids(page) == EXPECTED[name]
    assert "Audit findings" in page and "schema fingerprint" in page
    assert "Suspect labels (in-sample)" in page and "<b>In-sample</b>" in page
    if name == "search":
        assert 'class="dataframe trials"' in page and "Objective history" in page
        assert "need at least 2 complete trials" not in page


def test_report_of_a_run_whose_data_are_gone(runs, tmp_path):
    moved = tmp_path / "copy"
    shutil.copytree(runs["multiclass"], moved)
    manifest = json.loads((moved / "labelwise.json").read_text())
    manifest["plan"]["config"]["data"]["train"] = str(tmp_path / "gone.csv")
    (moved / "labelwise.json").write_text(json.dumps(manifest))
    page = write_report(moved, path=tmp_path / "r.html").read_text()
    assert "the training data could not be read again" in page
    assert "train file not found" in page
    assert _plot_ids(page) == {"plot-curves", "plot-confusion"}  # from the saved files only
    from labelwise.outputs.model_card import write_model_card

    card = write_model_card(moved).read_text()
    assert "Training counts: unavailable" in card and "train file not found" in card


def test_not_an_output_dir_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not a labelwise output directory") as info:
        write_report(tmp_path)
    assert "pass the output_dir= of labelwise train or labelwise tune" in str(info.value)
    assert "pass the --output-dir of labelwise train" in info.value.render("cli")
    with pytest.raises(DataError, match="output directory not found"):
        write_report(tmp_path / "missing")


def test_a_search_without_finished_trials_says_so(tmp_path):
    (tmp_path / "tune.json").write_text('{"backend": "optuna", "storage": null}')
    page = write_report(tmp_path).read_text()
    assert "trials.csv is missing" in page and "no best/ model" in page
    assert _plot_ids(page) == set()


def test_model_card_names_labels_metrics_and_usage(runs):
    card = (runs["multilabel"] / "README.md").read_text()
    front = card.split("---")[1]
    assert "library_name: transformers" in front and "pipeline_tag: text-classification" in front
    assert "- labelwise" in front and "- multilabel" in front
    assert "| 0 | x | 24 |" in card and "| 1 | y | 24 |" in card  # train counts per label
    assert "| micro_f1 |" in card and "| valid | test |" in card.replace("metric ", "")
    assert "tuned: max F1 on validation" in card
    assert 'pipeline("text-classification", model=MODEL_DIR, top_k=None)' in card
    assert "labelwise.predict(MODEL_DIR" in card and "| learning_rate | `5e-05` |" in card
    assert ("New head, bias at start: training prior (log-odds of each label's training "
            "frequency).") in " ".join(card.split())
    best = (runs["search"] / "best" / "README.md").read_text()
    assert "Chosen by hyperparameter search (trial" in best and "| 1 | pos | 24 |" in best


@pytest.mark.parametrize("name", ["multiclass", "multilabel"])
def test_model_card_snippets_run(runs, name):
    card = (runs[name] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", card, flags=re.DOTALL)
    assert len(blocks) == 2
    for code in blocks:
        code = code.replace('"path/to/this/model"', repr(str(runs[name])))
        scope: dict = {}
        exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - the card's own snippet
    if name == "multilabel":
        assert all(set(row) <= {"x", "y"} for row in scope["preds"].labels)


def test_cli_report_flags_and_a_failing_report(tmp_path, tiny_model, monkeypatch):
    import labelwise.report.html

    config = tmp_path / "run.yaml"  # JSON is YAML
    cfg = _config(tmp_path / "d", tiny_model, "multiclass").model_dump(mode="json")
    config.write_text(json.dumps({k: v for k, v in cfg.items() if k != "output_dir"}))

    def broken(*args, **kwargs):
        raise RuntimeError("no plot today")

    monkeypatch.setattr(labelwise.report.html, "write_report", broken)
    result = runner.invoke(app, ["train", "--config", str(config), "-o", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    assert "the report was not written: RuntimeError: no plot today" in " ".join(
        result.output.split())
    monkeypatch.undo()
    result = runner.invoke(app, ["report", str(tmp_path / "a"), "--output",
                                 str(tmp_path / "a.html")])
    assert result.exit_code == 0, result.output
    assert "plot-confusion" in (tmp_path / "a.html").read_text()
    result = runner.invoke(app, ["train", "--config", str(config), "-o", str(tmp_path / "b"),
                                 "--no-report"])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "b" / "report.html").exists()
    assert (tmp_path / "b" / "README.md").exists()
    bad = runner.invoke(app, ["report", str(tmp_path)])
    assert bad.exit_code == 2 and "not a labelwise output directory" in bad.output


# --- rendered in headless Chromium -------------------------------------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  # software WebGL for go.Parcoords: Chromium no longer falls back to it
                  # silently (it logs a deprecation message to the page console instead)
                  "--enable-unsafe-swiftshader", "--virtual-time-budget=5000"]
# A console message of the page, as Chromium >= 120 logs it with --enable-logging=stderr:
# [pid:tid:time:INFO:CONSOLE:12] "Uncaught ReferenceError: x is not defined", source: URL (12)
# (older versions wrote CONSOLE(12)). Every level (log, warn, error, uncaught) is INFO.
CONSOLE = re.compile(r':CONSOLE(?::\d+|\(\d+\))\] "(?P<msg>.*)", source: (?P<src>.*) '
                     r'\((?P<line>\d+)\)\s*$')
# GPU driver notices that Chromium forwards to the page console; they are not page errors.
BENIGN = re.compile(r"^\[\.WebGL-0x[0-9a-f]+\]GL Driver Message")


def _chromium() -> str:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.skip("chromium is not installed (apt-get install -y chromium)")


def _run(binary: str, tmp: Path, *extra: str, url: str) -> subprocess.CompletedProcess:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, url],
                          capture_output=True, text=True, timeout=180, check=False)


def _dump(binary: str, tmp: Path, page: Path) -> tuple[str, list[str]]:
    """The DOM after the scripts ran, and every console message the page logged."""
    proc = _run(binary, tmp, "--enable-logging=stderr", "--v=0", "--dump-dom",
                url=page.resolve().as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    messages = [m.group("msg") for line in proc.stderr.splitlines()
                if (m := CONSOLE.search(line)) and m.group("src").startswith("file://")]
    return proc.stdout, [m for m in messages if not BENIGN.match(m)]


def test_chromium_console_capture_sees_page_errors(tmp_path):
    """The error check below is only as good as this: it must see a broken page's errors."""
    binary = _chromium()
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>console.error('boom-console');</script>"
                   "<script>undefinedFunction();</script></body></html>")
    _, messages = _dump(binary, tmp_path, bad)
    assert "boom-console" in messages
    assert any(m.startswith("Uncaught ReferenceError: undefinedFunction") for m in messages)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_report_renders_in_chromium_without_js_errors(runs, tmp_path, name):
    binary = _chromium()
    report = runs[name] / "report.html"
    dom, errors = _dump(binary, tmp_path, report)
    assert errors == [], errors
    starts = [(m.start(), m.group(1)) for m in PLOT_DIV.finditer(dom)]
    assert {pid for _, pid in starts} == EXPECTED[name]
    for i, (start, pid) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(dom)
        inner = dom[start:dom.find("</section>", start, end) if "</section>" in dom[start:end]
                    else end]
        assert 'class="plot-container' in inner and "main-svg" in inner, f"{pid} not drawn"


def test_report_screenshot_is_a_real_picture(runs, tmp_path):
    binary = _chromium()
    shot = tmp_path / "report.png"
    proc = _run(binary, tmp_path, "--hide-scrollbars", "--window-size=1280,4000",
                f"--screenshot={shot}", url=(runs["search"] / "report.html").resolve().as_uri())
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 4000)
    idat, pos = b"", 8
    while pos < len(data):
        (n,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        idat += data[pos + 8:pos + 8 + n] if kind == b"IDAT" else b""
        pos += 12 + n
    # A blank 1280x4000 page is ~23 kB with 4 distinct filtered byte values; plots are not.
    assert len(data) > 100_000 and len(set(zlib.decompress(idat))) > 64


def test_suspect_labels_section_lists_validation_rows(runs):
    from labelwise.report.html import _read_run, _suspects_html

    run = _read_run(runs["multiclass"])
    body = _suspects_html(run)
    assert "validation rows whose label the trained model confidently contradicts" in body
    rows = [int(r) for r in re.findall(r"<tr><td>(\d+)</td>", body)]
    assert all(0 <= r < 24 for r in rows)  # rows of valid.csv (24 rows)
