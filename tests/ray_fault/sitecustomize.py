"""Loaded by the Python processes of the test Ray cluster (their PYTHONPATH holds this
directory): a trial whose learning rate equals ``LABELWISE_TEST_FAIL_LR`` raises, so the
tests can show that one failed trial does not stop a Ray search. Nothing else changes."""

import importlib.abc
import importlib.util
import os
import sys

FAIL_LR = os.environ.get("LABELWISE_TEST_FAIL_LR")


class _Patch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):  # type: ignore[no-untyped-def]
        if name != "labelwise.tuning._runner":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run_module = spec.loader.exec_module

        def exec_module(module):  # type: ignore[no-untyped-def]
            run_module(module)
            real = module.TrialRunner.run

            def run(self, params, **kwargs):  # type: ignore[no-untyped-def]
                if params.get("train.learning_rate") == float(FAIL_LR):
                    raise RuntimeError("injected failure for this learning rate")
                return real(self, params, **kwargs)

            module.TrialRunner.run = run

        spec.loader.exec_module = exec_module
        return spec


if FAIL_LR:
    sys.meta_path.insert(0, _Patch())
