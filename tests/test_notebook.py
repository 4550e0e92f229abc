"""docs/python.ipynb, executed in a Jupyter kernel on a tiny model, its outputs read back.

It trains from a DataFrame, tunes from a ``datasets.Dataset`` and predicts a string, a list
and a Dataset; every run prints its plan once and shows one bar per stage, and nothing of
Transformers' own output (load report, weight-loading and shard-writing bars) gets through.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "python.ipynb"
NOISE = ("LOAD REPORT", "Loading weights", "Writing model shards", "MISSING", "Warning",
         "warn", "IProgress", "Traceback")


def _texts(cell) -> list[str]:
    """Each output of a cell as text: streams, results and the text form of displays."""
    out = []
    for o in cell.get("outputs", []):
        if o["output_type"] == "stream":
            out.append(o["text"])
        elif o["output_type"] in ("execute_result", "display_data"):
            out.append(o["data"].get("text/plain", ""))
        elif o["output_type"] == "error":
            out.append("\n".join(o["traceback"]))
    return out


def _bars(cell) -> list[str]:
    """The stage of each progress bar the cell drew (a widget, or a text bar)."""
    names = []
    for o in cell.get("outputs", []):
        if o["output_type"] == "display_data" and \
                "application/vnd.jupyter.widget-view+json" in o["data"]:
            names.append(o["data"]["text/plain"].split(":")[0].strip())
        elif o["output_type"] == "stream" and o["name"] == "stderr":
            # a text bar redraws itself: count each stage once per cell
            for stage in dict.fromkeys(re.findall(r"(?:^|\r|\n)(\w+):\s+\d+%", o["text"])):
                names.append(stage)
    return names


@pytest.fixture(scope="module")
def executed(tmp_path_factory, tiny_model):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "the notebook has one parameters cell"
    params[0].source = (f"MODEL = {str(tiny_model)!r}\nEPOCHS = 1\nMAX_STEPS = 2\n"
                        "N_TRIALS = 2\nOUTPUT = 'runs/notebook'")
    work = tmp_path_factory.mktemp("notebook")
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(work)}})
    client.execute()
    return nb, work


def _cell(nb, text):
    found = [c for c in nb.cells if c.cell_type == "code" and text in c.source]
    assert len(found) == 1, text
    return found[0]


def test_every_cell_ran_without_an_error(executed):
    nb, _ = executed
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not [o for o in cell.outputs if o["output_type"] == "error"], cell.source


def test_training_from_a_dataframe_shows_the_plan_once_and_one_bar_per_stage(executed):
    nb, work = executed
    cell = _cell(nb, "labelwise.train(")
    text = "".join(_texts(cell))
    assert text.count("plan:") == 1 and "task=multiclass" in text
    assert _bars(cell) == ["tokenizing", "training"]
    assert not [n for n in NOISE if n in text], text
    assert "'test':" in text  # the metrics of the test split
    # two steps on a tiny random model: the findings after training say what it cannot do
    assert text.count("after training:") == 1 and "LW60" in text
    assert (work / "runs/notebook/train/labelwise.json").exists()


def test_tuning_from_a_dataset_shows_tokenizing_and_trials(executed):
    nb, work = executed
    cell = _cell(nb, "labelwise.tune(")
    text = "".join(_texts(cell))
    assert text.count("plan:") == 1 and "space=" in text
    assert _bars(cell) == ["tokenizing", "trials"]
    assert not [n for n in NOISE if n in text], text
    assert (work / "runs/notebook/tune/best/labelwise.json").exists()


def test_predictions_of_a_string_a_list_and_a_dataset(executed):
    nb, _ = executed
    classes = {"'negative'", "'positive'", "'neutral'", "'ambiguous'"}
    one = "".join(_texts(_cell(nb, "this made my day")))
    assert one.startswith("[") and len(re.findall(r"'\w+'", one)) == 1
    assert set(re.findall(r"'\w+'", one)) <= classes
    three = "".join(_texts(_cell(nb, '"I love it"')))
    assert len(re.findall(r"'\w+'", three)) == 3
    table = "".join(_texts(_cell(nb, "Dataset.from_pandas(test_df))")))
    import labelwise

    rows = len((Path(labelwise.__file__).parent / "demo" / "test.jsonl").read_text()
               .splitlines())
    assert table.startswith(f"({rows},") and "label" in table
