"""``predict_file`` / ``labelwise predict``: chunked, in order, atomic, resumable."""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import labelwise
from labelwise.cli.app import app
from labelwise.data.io import read_table
from labelwise.errors import ConfigError, DataError, OutputError
from labelwise.outputs.names import partial_output, partial_state
from labelwise.plan.config import config_from_dict
from labelwise.training import stream
from labelwise.training.forward import ACCELERATOR_BATCH_SIZE, CPU_BATCH_SIZE, batch_size_for
from labelwise.training.predict import predict
from labelwise.training.stream import predict_file
from labelwise.training.train import train

WORDS = "good bad great awful fine film movie plot story funny boring sad happy".split()
runner = CliRunner()


def _texts(n: int, offset: int = 0) -> list[str]:
    return [" ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(1 + (i * 5) % 11))
            for i in range(offset, offset + n)]


def _frame(n: int, offset: int = 0) -> pd.DataFrame:
    return pd.DataFrame({"id": range(offset, offset + n), "review": _texts(n, offset),
                         "label": [["neg", "pos"][i % 2] for i in range(n)]})


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_model):
    tmp = tmp_path_factory.mktemp("stream")
    _frame(32).to_csv(tmp / "train.csv", index=False)
    _frame(16, 32).to_csv(tmp / "valid.csv", index=False)
    cfg = config_from_dict({
        "data": {"train": str(tmp / "train.csv"), "valid": str(tmp / "valid.csv"),
                 "text_column": "review"},
        "model": {"name_or_path": str(tiny_model), "max_length": 32},
        "train": {"max_steps": 2, "batch_size": 8}, "output_dir": str(tmp / "out")})
    return train(cfg).output_dir


def _reference(model_dir, path: Path, **options) -> pd.DataFrame:
    """What predicting the whole file at once writes (the path before chunking)."""
    frame = read_table(path, split="input", text_columns=["review"]).frame
    preds = predict(model_dir, frame, text_column="review", **options)
    table = preds.to_frame()
    return frame.reset_index(drop=True).join(table.add_prefix("pred_") if "label" in frame
                                             else table)


def _same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    scores = [c for c in want.columns if "score_" in c]
    others = [c for c in want.columns if c not in scores]
    def plain(frame: pd.DataFrame) -> pd.DataFrame:  # a missing value as None, however read
        return frame[others].astype(object).where(frame[others].notna(), None)

    pd.testing.assert_frame_equal(plain(got), plain(want), check_dtype=False)
    assert np.allclose(got[scores].to_numpy(float), want[scores].to_numpy(float), atol=1e-5,
                       equal_nan=True)


def _raise_on(monkeypatch, call: int, exc: type[BaseException] = RuntimeError) -> list[int]:
    """Make the chunk predictor fail on its ``call``-th call (1-based); counts calls."""
    real = stream._predict_chunk
    calls: list[int] = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            raise exc("stopped here")
        return real(*args, **kwargs)

    monkeypatch.setattr(stream, "_predict_chunk", flaky)
    return calls


def test_the_output_is_what_predicting_the_whole_file_writes(model_dir, tmp_path):
    _frame(50).to_csv(tmp_path / "in.csv", index=False)
    whole = _reference(model_dir, tmp_path / "in.csv")
    one = predict_file(model_dir=model_dir, input=tmp_path / "in.csv",
                       output=tmp_path / "one.csv", chunk_rows=1000)
    # one chunk: the same batches as the whole file, so the same bytes as before
    assert (tmp_path / "one.csv").read_text() == whole.to_csv(index=False)
    assert (one.rows, one.skipped, one.chunks, one.resumed_rows) == (50, 0, 1, 0)
    many = predict_file(model_dir=model_dir, input=tmp_path / "in.csv",
                        output=tmp_path / "many.csv", chunk_rows=7)
    assert many.chunks == 8 and many.rows == 50
    _same(pd.read_csv(tmp_path / "many.csv"), whole)
    assert list(pd.read_csv(tmp_path / "many.csv").columns) == [
        "id", "review", "label", "pred_label", "pred_score_neg", "pred_score_pos"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "many.csv", "one.csv"]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_jsonl_and_parquet_in_and_out(model_dir, tmp_path, suffix):
    frame = _frame(23).drop(columns="label")
    src = tmp_path / f"in{suffix}"
    if suffix == ".jsonl":
        frame.to_json(src, orient="records", lines=True)
    else:
        frame.to_parquet(src)
    whole = _reference(model_dir, src)
    out = tmp_path / f"out{suffix}"
    predict_file(model_dir=model_dir, input=src, output=out, chunk_rows=5)
    got = pd.read_json(out, lines=True) if suffix == ".jsonl" else pd.read_parquet(out)
    assert list(got.columns) == ["id", "review", "label", "score_neg", "score_pos"]
    _same(got, whole)
    if suffix == ".jsonl":  # a whole-file write of the same frame, line for line
        assert len(out.read_text().splitlines()) == 23


TEXT = st.lists(st.sampled_from(WORDS), min_size=1, max_size=40).map(" ".join)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.one_of(TEXT, st.just(None)), min_size=0, max_size=40),
       chunk_rows=st.integers(1, 12), batch_size=st.integers(1, 5))
def test_rows_keep_their_order_over_many_chunks(model_dir, rows, chunk_rows, batch_size):
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in.csv", Path(tmp) / "out.csv"
        pd.DataFrame({"id": range(len(rows)), "review": rows}).to_csv(src, index=False)
        done = predict_file(model_dir=model_dir, input=src, output=out,
                            chunk_rows=chunk_rows, batch_size=batch_size, on_invalid="skip")
        got = pd.read_csv(out, keep_default_na=False, na_values=[""], dtype={"review": str})
        assert got["id"].tolist() == list(range(len(rows)))
        assert done.skipped == sum(r is None for r in rows)
        if rows:
            _same(got, _reference(model_dir, src, on_invalid="skip"))


def test_csv_texts_stay_as_written(model_dir, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text('review,code\nNA,007\n"",x\n123,NA\nNone,1.50\ngood film,\n')
    done = predict_file(model_dir=model_dir, input=src, output=tmp_path / "out.csv",
                        on_invalid="skip", chunk_rows=2)
    with open(tmp_path / "out.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["review", "code", "label", "score_neg", "score_pos"]
    assert [r[0] for r in rows[1:]] == ["NA", "", "123", "None", "good film"]
    assert [r[1] for r in rows[1:]] == ["007", "x", "NA", "1.50", ""]  # a text column here
    assert rows[2][2:] == ["", "", ""] and all(r[2] in ("neg", "pos") for r in rows[1:2])
    assert done.skipped == 1 and done.rows == 5


def test_a_column_typed_over_the_whole_file_not_per_chunk(model_dir, tmp_path):
    src = tmp_path / "in.csv"
    frame = pd.DataFrame({"review": _texts(9), "n": [str(i) for i in range(8)] + [""]})
    frame.to_csv(src, index=False)
    predict_file(model_dir=model_dir, input=src, output=tmp_path / "out.csv", chunk_rows=3)
    written = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    assert written["n"].tolist()[:2] == ["0.0", "1.0"]  # as the whole file reads: floats
    assert written.equals(pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False))
    _same(pd.read_csv(tmp_path / "out.csv"), _reference(model_dir, src))


def test_rows_with_no_text_are_refused_before_anything_is_written(model_dir, tmp_path,
                                                                  monkeypatch):
    frame = _frame(30)
    frame.loc[[3, 25], "review"] = ""
    frame.to_csv(tmp_path / "in.csv", index=False)
    calls = _raise_on(monkeypatch, 0)
    with pytest.raises(DataError) as err:
        predict_file(model_dir=model_dir, input=tmp_path / "in.csv",
                     output=tmp_path / "out.csv", chunk_rows=4)
    assert err.value.code == "LW408" and "2 of 30 inputs are not texts" in err.value.what
    assert "positions 3 (missing), 25 (missing)" in err.value.where
    assert "on_invalid='skip'" in str(err.value)
    assert not calls and sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_skipped_rows_keep_their_place(model_dir, tmp_path):
    frame = _frame(12).drop(columns="label")
    frame.loc[[0, 5, 11], "review"] = ["", "   ", None]
    frame.to_csv(tmp_path / "in.csv", index=False)
    done = predict_file(model_dir=model_dir, input=tmp_path / "in.csv",
                        output=tmp_path / "out.csv", chunk_rows=4, on_invalid="skip")
    got = pd.read_csv(tmp_path / "out.csv", keep_default_na=False, na_values=[""])
    assert done.skipped == 3 and got["id"].tolist() == list(range(12))
    assert got["label"].isna().tolist() == [i in (0, 5, 11) for i in range(12)]
    assert got.loc[[0, 5, 11], ["score_neg", "score_pos"]].isna().all().all()
    assert got["review"][5] == "   "


def test_a_failure_mid_file_leaves_the_old_output_untouched(model_dir, tmp_path, monkeypatch):
    _frame(20).to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "out.csv"
    out.write_text("the previous predictions\n")
    _raise_on(monkeypatch, 3)
    with pytest.raises(RuntimeError, match="stopped here"):
        predict_file(model_dir=model_dir, input=tmp_path / "in.csv", output=out,
                     chunk_rows=4)
    assert out.read_text() == "the previous predictions\n"
    fresh = tmp_path / "fresh.csv"
    _raise_on(monkeypatch, 3)
    with pytest.raises(RuntimeError):
        predict_file(model_dir=model_dir, input=tmp_path / "in.csv", output=fresh,
                     chunk_rows=4)
    assert not fresh.exists()
    assert partial_output(fresh).exists() and partial_state(fresh).exists()  # resumable


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_an_interrupted_run_resumes_to_the_same_file(model_dir, tmp_path, monkeypatch,
                                                     suffix):
    _frame(30).to_csv(tmp_path / "in.csv", index=False)
    options = {"model_dir": model_dir, "input": tmp_path / "in.csv", "chunk_rows": 4}
    whole = tmp_path / f"whole{suffix}"
    predict_file(output=whole, **options)
    out = tmp_path / f"out{suffix}"
    calls = _raise_on(monkeypatch, 4, KeyboardInterrupt)  # 3 chunks done, the 4th stopped
    with pytest.raises(KeyboardInterrupt):
        predict_file(output=out, **options)
    assert not out.exists() and len(calls) == 4
    if suffix != ".parquet":  # a chunk half written when the process died
        with open(partial_output(out), "ab") as fh:
            fh.write(b"12,half a ro")
    done = predict_file(output=out, resume=True, **options)
    assert done.resumed_rows == 12 and done.rows == 30 and len(calls) == 4 + 5
    if suffix == ".parquet":
        pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(whole))
    else:
        assert out.read_bytes() == whole.read_bytes()
    assert not partial_output(out).exists() and not partial_state(out).exists()


def test_the_default_batch_is_recorded_as_the_size_it_resolves_to(model_dir, tmp_path,
                                                                 monkeypatch):
    """A run on the default batch resumes under the same size given explicitly, and gives
    the labels and scores of any other batch size (torch)."""
    _frame(20).to_csv(tmp_path / "in.csv", index=False)
    options = {"model_dir": model_dir, "input": tmp_path / "in.csv", "chunk_rows": 4}
    out = tmp_path / "out.csv"
    calls = _raise_on(monkeypatch, 3, KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        predict_file(output=out, **options)  # batch_size=None
    done = predict_file(output=out, resume=True, batch_size=CPU_BATCH_SIZE["torch"],
                        **options)
    assert done.resumed_rows == 8 and done.rows == 20 and len(calls) == 3 + 3
    other = predict_file(output=tmp_path / "other.csv", batch_size=3, **options)
    a, b = pd.read_csv(out), pd.read_csv(other.path)
    assert a["label"].tolist() == b["label"].tolist()
    np.testing.assert_allclose(a.filter(like="score").to_numpy(),
                               b.filter(like="score").to_numpy(), atol=1e-5)


def test_the_default_batch_is_32_rows_on_the_cpu_16_in_onnx_and_64_elsewhere():
    assert (CPU_BATCH_SIZE, ACCELERATOR_BATCH_SIZE) == ({"torch": 32, "onnx": 16}, 64)
    assert batch_size_for(None) == batch_size_for(None, "cpu", "torch") == 32
    assert batch_size_for(None, "cpu", "onnx") == batch_size_for(None, "cuda", "onnx") == 16
    assert batch_size_for(None, "cuda:1") == batch_size_for(None, "mps") == 64
    assert batch_size_for(7, "cuda") == batch_size_for(7, "cpu", "onnx") == 7
    with pytest.raises(ConfigError, match="batch_size must be a positive integer"):
        predict_file(model_dir="unused", input="in.csv", output="out.csv", batch_size=0)
    with pytest.raises(ConfigError, match="chunk_rows must be a positive integer"):
        predict_file(model_dir="unused", input="in.csv", output="out.csv", chunk_rows=None)


def test_a_partial_for_other_options_is_refused_or_restarted(model_dir, tmp_path,
                                                             monkeypatch):
    _frame(20).to_csv(tmp_path / "in.csv", index=False)
    options = {"model_dir": model_dir, "input": tmp_path / "in.csv", "chunk_rows": 4}
    out = tmp_path / "out.csv"
    _raise_on(monkeypatch, 2, KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        predict_file(output=out, **options)
    monkeypatch.undo()
    with pytest.raises(OutputError) as err:
        predict_file(output=out, resume=True, batch_size=3, **options)
    assert (err.value.code == "LW364"
            and f"batch_size {CPU_BATCH_SIZE['torch']}, not 3" in err.value.what)
    assert "drop resume=True to start over" in str(err.value)
    assert not out.exists() and partial_state(out).exists()
    (tmp_path / "in.csv").write_text((tmp_path / "in.csv").read_text() + "99,sad film,neg\n")
    with pytest.raises(OutputError, match="another input file"):
        predict_file(output=out, resume=True, **options)
    done = predict_file(output=out, **options)  # default: a partial that does not match
    assert done.resumed_rows == 0 and done.rows == 21  # is started over
    predict_file(output=tmp_path / "want.csv", **options)
    assert out.read_bytes() == (tmp_path / "want.csv").read_bytes()
    with pytest.raises(OutputError, match="no interrupted prediction"):
        predict_file(output=out, resume=True, **options)


def test_restart_drops_a_matching_partial(model_dir, tmp_path, monkeypatch):
    _frame(12).to_csv(tmp_path / "in.csv", index=False)
    options = {"model_dir": model_dir, "input": tmp_path / "in.csv", "chunk_rows": 4}
    _raise_on(monkeypatch, 2, KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        predict_file(output=tmp_path / "out.csv", **options)
    monkeypatch.undo()
    done = predict_file(output=tmp_path / "out.csv", resume=False, **options)
    assert done.resumed_rows == 0 and done.rows == 12


def test_bad_options_are_refused_before_loading(model_dir, tmp_path):
    _frame(3).to_csv(tmp_path / "in.csv", index=False)
    with pytest.raises(ConfigError, match="unknown output type '.xlsx'"):
        predict_file(model_dir=model_dir, input=tmp_path / "in.csv",
                     output=tmp_path / "out.xlsx")
    with pytest.raises(ConfigError, match="chunk_rows must be a positive integer"):
        predict_file(model_dir=model_dir, input=tmp_path / "in.csv",
                     output=tmp_path / "out.csv", chunk_rows=0)
    with pytest.raises(DataError, match="input file not found"):
        predict_file(model_dir=model_dir, input=tmp_path / "nope.csv",
                     output=tmp_path / "out.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_the_top_level_name(model_dir, tmp_path):
    _frame(3).to_csv(tmp_path / "in.csv", index=False)
    done = labelwise.predict_file(model_dir=model_dir, input=tmp_path / "in.csv",
                                  output=tmp_path / "o.csv")
    assert isinstance(done, labelwise.PredictedFile) and done.path == tmp_path / "o.csv"


def _cli(*args: str):
    result = runner.invoke(app, ["predict", *map(str, args)])
    return result.exit_code, " ".join(result.output.split())


def test_cli_predicts_in_chunks(model_dir, tmp_path):
    _frame(10).to_csv(tmp_path / "in.csv", index=False)
    code, text = _cli(model_dir, tmp_path / "in.csv", "-o", tmp_path / "out.csv",
                      "--chunk-rows", "3")
    assert code == 0, text
    assert f"wrote 10 predictions to {tmp_path / 'out.csv'}" in text
    _same(pd.read_csv(tmp_path / "out.csv"), _reference(model_dir, tmp_path / "in.csv"))


@pytest.mark.parametrize("args, message", [
    (["-o", "{tmp}/out.xlsx"], "LW341 unknown output type '.xlsx'"),
    (["-o", "{tmp}/out.csv", "--text-column", "body"],
     "text column 'body' not found in the input split"),
    (["-o", "{tmp}/out.csv", "--chunk-rows", "0"], "chunk_rows must be a positive integer"),
    (["-o", "{tmp}/out.csv", "--resume"], "LW364 there is no interrupted prediction"),
])
def test_cli_user_mistakes_exit_2_with_one_line(model_dir, tmp_path, args, message):
    _frame(5).to_csv(tmp_path / "in.csv", index=False)
    code, text = _cli(model_dir, tmp_path / "in.csv",
                      *[a.format(tmp=tmp_path) for a in args])
    assert code == 2 and message in text and "Traceback" not in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_cli_invalid_rows_name_the_flag(model_dir, tmp_path):
    frame = _frame(5)
    frame.loc[2, "review"] = ""
    frame.to_csv(tmp_path / "in.csv", index=False)
    code, text = _cli(model_dir, tmp_path / "in.csv", "-o", tmp_path / "out.csv")
    assert code == 2 and "1 of 5 inputs are not texts" in text
    assert "--on-invalid skip" in text and not (tmp_path / "out.csv").exists()
    code, text = _cli(model_dir, tmp_path / "in.csv", "-o", tmp_path / "out.csv",
                      "--on-invalid", "skip")
    assert code == 0 and "(1 skipped)" in text


@pytest.mark.parametrize("bad", [0, -3, True, 2.5, "8"])
def test_one_count_check_refuses_a_bad_batch_size_everywhere(model_dir, tmp_path, bad):
    # predict, predict_file, the encoder of find_label_errors and the CLI share one check:
    # True is not one row, 2.5 and "8" are not counts (no TypeError from a comparison)
    from labelwise.training.label_errors import embed_texts

    message = f"batch_size must be a positive integer. Got {bad!r} instead"
    _frame(6).to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "out.csv"
    calls = [lambda: predict(model_dir, ["a film"], batch_size=bad),
             lambda: predict_file(model_dir=model_dir, input=tmp_path / "in.csv", output=out,
                                  batch_size=bad),
             lambda: predict_file(model_dir=model_dir, input=tmp_path / "in.csv", output=out,
                                  chunk_rows=4, batch_size=bad),
             lambda: embed_texts(["a film"], batch_size=bad),
             lambda: labelwise.find_label_errors(train=_frame(20), text_column="review",
                                                 batch_size=bad, progress=False)]
    for call in calls:
        with pytest.raises(ConfigError) as err:
            call()
        assert err.value.what == message and err.value.code == "LW342"
        assert str(err.value).endswith("Fix: pass batch_size=1 or more")
    assert not out.exists() and not partial_state(out).exists()
    if type(bad) is int:  # what the command line can pass
        result = CliRunner().invoke(app, ["predict", str(model_dir), str(tmp_path / "in.csv"),
                                          "-o", str(out), "--batch-size", str(bad)])
        assert result.exit_code == 2 and "Fix: pass --batch-size 1 or more" in result.output
        assert "Traceback" not in result.output and not out.exists()


@pytest.mark.parametrize("bad", [0, True, 1.5, None])
def test_chunk_rows_must_be_a_count(model_dir, tmp_path, bad):
    _frame(6).to_csv(tmp_path / "in.csv", index=False)
    with pytest.raises(ConfigError) as err:
        predict_file(model_dir=model_dir, input=tmp_path / "in.csv",
                     output=tmp_path / "out.csv", chunk_rows=bad)
    assert err.value.what == f"chunk_rows must be a positive integer. Got {bad!r} instead"
    assert not (tmp_path / "out.csv").exists()
