"""Shared fixtures. No test touches the network: the hub is switched off for every test."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tuning_data import RAY_FAIL_LR

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Ray reads its authentication settings once per process, at its first use: the token of the
# test Ray cluster (tests/test_tune_ray.py) is set here, before any test imports ray.
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DEMO = Path(__file__).resolve().parents[1] / "src" / "labelwise" / "demo"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "sst2" / "train.csv").exists():
        pytest.skip(f"shared benchmark data not found at {SHARED_DATA}")
    return SHARED_DATA


WORDS = ("good bad great awful fine film movie plot actor story funny boring sad happy "
         "love hate slow fast long short city river who what where when how many why "
         "name country year capital number person").split()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny random BERT (2 layers, hidden 32) with a real WordPiece tokenizer."""
    from labelwise.testing import make_tiny_bert

    return make_tiny_bert(tmp_path_factory.mktemp("tiny") / "bert", vocab_words=WORDS)


@pytest.fixture(autouse=True)
def _token_cache(tmp_path_factory, monkeypatch):
    """Every test session gets its own token cache."""
    monkeypatch.setenv("LABELWISE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory):
    """A real local Ray cluster, started once per session: a head and a second node, each a
    process on 127.0.0.1 with one CPU. Its processes load ``tests/ray_fault`` (a trial at
    learning rate ``RAY_FAIL_LR`` raises). Without Ray installed, the tests that use it are
    skipped, unless ``LABELWISE_REQUIRE_SERVICES=1`` (set by CI) makes that a failure."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        if os.environ.get("LABELWISE_REQUIRE_SERVICES") == "1":
            pytest.fail("ray is not installed: pip install 'labelwise[ray]'")
        pytest.skip("ray is not installed: pip install 'labelwise[ray]'")
    exe = str(Path(sys.executable).parent / "ray")
    port = _free_port()
    fault_dir = Path(__file__).resolve().parent / "ray_fault"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(fault_dir), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "LABELWISE_TEST_FAIL_LR": str(RAY_FAIL_LR), "HF_HUB_OFFLINE": "1",
        "RAY_USAGE_STATS_ENABLED": "0"}
    common = ["--num-cpus=1", "--num-gpus=0", "--object-store-memory=100000000",
              "--node-ip-address=127.0.0.1", "--disable-usage-stats", "--block"]
    assert os.environ.get("RAY_AUTH_TOKEN"), "set above, before any test imports ray"
    logs = tmp_path_factory.mktemp("ray")
    nodes: list[subprocess.Popen] = []
    try:
        # --block: each node lives in its own process group, so the teardown stops exactly
        # the processes started here (not `ray stop`, which stops every Ray of the machine)
        for i, args in enumerate((["--head", f"--port={port}", "--include-dashboard=false"],
                                  [f"--address=127.0.0.1:{port}"])):
            log = logs / f"node{i}.log"
            with log.open("w") as fh:
                nodes.append(subprocess.Popen([exe, "start", *args, *common], env=env,
                                              stdout=fh, stderr=subprocess.STDOUT,
                                              start_new_session=True))
            _wait_for(log, "Ray runtime started", nodes[-1])
        yield f"127.0.0.1:{port}"
    finally:
        import ray

        ray.shutdown()  # this process's driver, if a test left it connected
        for node in reversed(nodes):
            _stop_group(node)


def _wait_for(log: Path, text: str, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    """Poll ``log`` until it holds ``text``; fail if ``proc`` exits or the time is up."""
    import time

    deadline = time.monotonic() + timeout
    while text not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the test Ray node did not start: {log.read_text()[-2000:]}")
        try:
            proc.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            pass


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the node's process group (it shuts its Ray processes down), then SIGKILL
    whatever of the group is left."""
    import signal

    for sig, wait in ((signal.SIGTERM, 60), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
