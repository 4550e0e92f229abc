"""The label core and `inspect` load none of torch, transformers, optuna."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "transformers", "optuna", "ray", "datasets", "sklearn")

CORE = """
import sys, labelwise
from labelwise import infer_schema, load_splits, audit
import labelwise.labels.inference, labelwise.labels.schema, labelwise.data.auditing, labelwise.data.loading, labelwise.errors
import labelwise.findings, labelwise.data.inspection, labelwise.cli.app
print(",".join(m for m in {heavy!r} if m in sys.modules))
"""


def test_label_core_imports_nothing_heavy():
    proc = subprocess.run([sys.executable, "-c", CORE.format(heavy=HEAVY)],
                          capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == ""


def test_inspect_run_imports_nothing_heavy(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("text,label\n" + "".join(f"t{i},{'ab'[i % 2]}\n" for i in range(20)))
    code = (
        "import sys\n"
        "from labelwise.cli.app import app\n"
        f"try:\n    app(['inspect', {str(path)!r}, '--valid', {str(path)!r}])\n"
        "except SystemExit as e:\n    assert e.code == 0, e.code\n"
        "print('HEAVY=' + ','.join(m for m in ('torch', 'transformers', 'optuna')"
        " if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert proc.stdout.strip().splitlines()[-1] == "HEAVY="


def test_core_imports_without_heavy_packages_installed():
    # Block the heavy packages outright: the label core must still import and run.
    code = (
        "import sys\n"
        f"for m in {HEAVY!r}: sys.modules[m] = None\n"
        "from labelwise import infer_schema\n"
        "print(infer_schema(['a', 'b']).task.value)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert proc.stdout.strip() == "binary"


def test_top_level_verbs_are_callables_even_after_submodule_imports():
    code = ("import labelwise, labelwise.data.auditing, labelwise.training.predict, labelwise.tuning\n"
            "import labelwise.training.train, labelwise.training.export\n"
            "names = ['audit', 'predict', 'tune', 'train', 'preflight', 'infer_schema',"
            " 'load_splits', 'inspect_data', 'derive_contract', 'check_batch', 'check_targets',"
            " 'guard_trainer', 'LabelwiseCallback', 'predict_file', 'export']\n"
            "print(all(callable(getattr(labelwise, n)) for n in names))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert proc.stdout.strip() == "True"


def test_check_targets_needs_no_transformers():
    # A plain PyTorch loop may not have transformers installed: check_targets imports torch only.
    code = ("import sys\nsys.modules['transformers'] = None\nimport torch, labelwise\n"
            "print(labelwise.check_targets(torch.tensor([0, 1]), num_labels=2).loss)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert proc.stdout.strip() == "ce"
