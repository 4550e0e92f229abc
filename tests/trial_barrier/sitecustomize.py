"""Loaded by the worker processes of a search in tests/test_tune.py (their PYTHONPATH holds
this directory): each worker's first trial waits until ``LABELWISE_TEST_BARRIER_N`` workers
have a trial running (a file per process in ``LABELWISE_TEST_BARRIER``), so a test sees the
workers run trials side by side whatever the scheduling. Nothing else changes."""

import importlib.abc
import importlib.util
import os
import sys
import time

BARRIER = os.environ.get("LABELWISE_TEST_BARRIER")
PARTIES = int(os.environ.get("LABELWISE_TEST_BARRIER_N", "2"))


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
            arrived = []

            def run(self, params, **kwargs):  # type: ignore[no-untyped-def]
                if not arrived:
                    arrived.append(True)
                    with open(os.path.join(BARRIER, f"worker-{os.getpid()}"), "w"):
                        pass
                    deadline = time.monotonic() + 600
                    while len(os.listdir(BARRIER)) < PARTIES:  # poll: the others' trials
                        if time.monotonic() > deadline:
                            raise RuntimeError("the other workers never started a trial")
                        time.sleep(0.05)
                return real(self, params, **kwargs)

            module.TrialRunner.run = run

        spec.loader.exec_module = exec_module
        return spec


if BARRIER:
    sys.meta_path.insert(0, _Patch())
