"""The output dir under faults: two runs at once, mount points, --overwrite, SIGKILL while
writing, a full disk, an unwritable dir, a missing extra, a foreign Ray state.

Mount points, full disks and read-only filesystems are real tmpfs mounts (the tests need
root and ``mount``; they skip with the reason otherwise). Kills are real SIGKILLs of a
``labelwise`` process, sent from inside it at one named point of the write.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from labelwise.cli.app import app
from labelwise.errors import OutputError
from labelwise.plan.config import config_from_dict

runner = CliRunner()
SRC = str(Path(__file__).resolve().parents[1] / "src")
WORDS = "good bad great awful fine film movie plot story funny boring sad happy".split()


def _data(path: Path, n: int) -> str:
    rows = [{"text": " ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(2 + i % 5)),
             "label": ["neg", "pos"][i % 2]} for i in range(n)]
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


def make_config(tmp_path: Path, tiny_model: Path, out: Path | None = None,
                search: dict | None = None, **train):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    return config_from_dict({**({"search": search} if search else {}),
        "data": {"train": _data(data / "train.csv", 48), "valid": _data(data / "valid.csv", 24)},
        "model": {"name_or_path": str(tiny_model), "max_length": 32},
        "train": {"max_steps": 8, "batch_size": 8, "evals_per_epoch": 3, **train},
        "output_dir": str(out or tmp_path / "out")})


def write_yaml(config, path: Path) -> Path:
    path.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_none=True)))
    return path


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "HF_HUB_OFFLINE": "1"}


def listing(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` with its size and mtime."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def manifest(out: Path) -> dict:
    return json.loads((out / "labelwise.json").read_text())


def wait_for(check, what: str, timeout: float = 300.0, proc=None):
    """Poll ``check()`` until it is true (or the process it waits on has ended)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended ({proc.returncode}) before {what}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def tmpfs(tmp_path):
    """mount(path, size=..., ro=False): a real tmpfs at ``path``, unmounted afterwards."""
    mounted: list[Path] = []

    def mount(path: Path, *, size: str = "8m", ro: bool = False) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        opts = f"size={size}" + (",ro" if ro else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)],
                              capture_output=True, text=True)
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], check=False)


# Run in a child ``labelwise`` process: MODE selects one fault, injected at a named point.
CHILD = r"""
import os, signal, sys, time
from pathlib import Path
mode, flags = sys.argv[1], Path(sys.argv[2])
def die():
    os.kill(os.getpid(), signal.SIGKILL)
if mode == "checkpoint":  # checkpoint-6: model and optimizer written, RNG and state not
    import transformers
    real = transformers.Trainer._save_rng_state
    def save_rng(self, output_dir):
        if self.state.global_step == 6:
            die()
        real(self, output_dir)
    transformers.Trainer._save_rng_state = save_rng
elif mode == "final":  # the final model dir: weights, tokenizer and manifest written, card not
    import labelwise.outputs.model_card as card
    card.write_model_card = lambda *a, **k: die()
elif mode == "block":  # mid-training, holding the output dir, until FLAGS/go exists
    import labelwise.training.trainer as trainer
    real = trainer.StepTimer.on_step_end
    def on_step_end(self, args, state, control, **kw):
        real(self, args, state, control, **kw)
        if state.global_step == 1:
            (flags / "ready").write_text(str(os.getpid()))
            while not (flags / "go").exists():
                time.sleep(0.05)
    trainer.StepTimer.on_step_end = on_step_end
from labelwise.cli.app import main
sys.argv = ["labelwise", *sys.argv[3:]]
main()
"""


def child(mode: str, flags: Path, *args: str) -> subprocess.Popen:
    flags.mkdir(exist_ok=True)
    return subprocess.Popen([sys.executable, "-c", CHILD, mode, str(flags), *args], env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# --- one run at a time ------------------------------------------------------------------------
def test_a_second_train_into_a_busy_output_dir_is_refused_at_once(tmp_path, tiny_model):
    config = write_yaml(make_config(tmp_path, tiny_model), tmp_path / "run.yaml")
    out, work, flags = tmp_path / "out", tmp_path / ".out.partial", tmp_path / "flags"
    first = child("block", flags, "train", "--config", str(config), "--no-report")
    try:
        wait_for(lambda: (flags / "ready").exists(), "the first run's first step", proc=first)
        before = listing(work)
        second = subprocess.run([sys.executable, "-m", "labelwise", "train", "--config",
                                 str(config), "--no-report"], env=env(), capture_output=True,
                                text=True, timeout=300)
        message = " ".join(second.stderr.split())
        assert second.returncode == 2, second.stderr
        assert "LW360 output_dir is in use by labelwise train" in message
        assert f"pid {first.pid} " in message and "Traceback" not in second.stderr
        assert listing(work) == before and not out.exists()  # the first's work untouched
    finally:
        (flags / "go").write_text("")
    stdout, stderr = first.communicate(timeout=600)
    assert first.returncode == 0, stderr
    saved = manifest(out)
    assert saved["stats"]["steps"] == 8 and saved["stats"]["steps_this_run"] == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "flags", "out", "run.yaml"]


def test_a_search_into_a_busy_output_dir_is_refused(tmp_path, tiny_model):
    from labelwise.outputs.safety import hold_output
    from labelwise.tuning import tune

    config = make_config(tmp_path, tiny_model, search={"n_trials": 1})
    with hold_output(tmp_path / "out", command="labelwise tune"):
        with pytest.raises(OutputError, match="in use by labelwise tune") as info:
            tune(config)
    assert info.value.code == "LW360" and f"pid {os.getpid()} " in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # lock gone, nothing else


# --- mount points -----------------------------------------------------------------------------
def test_a_mount_point_output_dir_gets_the_model_inside_it(tmp_path, tiny_model, tmpfs):
    out = tmpfs(tmp_path / "volume", size="16m")
    (out / "labelwise.json").write_text("{}")  # an older labelwise output, replaced
    result = runner.invoke(app, ["train", "--config", str(write_yaml(make_config(
        tmp_path, tiny_model, out=out), tmp_path / "run.yaml")), "--overwrite", "--no-report"])
    assert result.exit_code == 0, result.output
    assert manifest(out)["stats"]["steps"] == 8 and (out / "model.safetensors").exists()
    assert sorted(p.name for p in out.iterdir()) == sorted(manifest(out)["files"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "run.yaml", "volume"]


def test_an_interrupted_move_into_a_mount_point_is_completed(tmp_path):
    from labelwise.outputs.safety import finish_swap, swap_into

    out = tmp_path / "out"
    work = out / ".labelwise.partial"
    (work / "final").mkdir(parents=True)
    for name in ("config.json", "labelwise.json", "model.safetensors"):
        (work / "final" / name).write_text(f"new {name}")
    (out / "labelwise.json").write_text("old")
    (out / "stale.bin").write_text("old")
    import labelwise.outputs.safety as safety

    real, moves = os.rename, []

    def rename(src, dst):  # the process dies after the second move into ``out``
        if Path(dst).parent == out:
            moves.append(dst)
            if len(moves) == 2:
                raise KeyboardInterrupt
        real(src, dst)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(safety.os, "rename", rename)
        with pytest.raises(KeyboardInterrupt):
            swap_into(work / "final", out, manifest="labelwise.json")
    assert not (out / "labelwise.json").exists()  # no manifest: not taken for a model
    assert finish_swap(work, out, manifest="labelwise.json")
    assert {p.name: p.read_text() for p in out.iterdir() if p.is_file()} == {
        "config.json": "new config.json", "labelwise.json": "new labelwise.json",
        "model.safetensors": "new model.safetensors"}
    assert not (out / ".labelwise.old").exists() and not (work / "swap.json").exists()


# --- --overwrite ------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["own_csv", "foreign_file", "no_marker"])
def test_overwrite_deletes_only_a_labelwise_output(tmp_path, tiny_model, case):
    out = tmp_path / "out"
    out.mkdir()
    config = make_config(tmp_path, tiny_model)
    if case != "no_marker":
        (out / "labelwise.json").write_text("{}")
        (out / "config.json").write_text("{}")
    if case == "own_csv":
        data = {"train": _data(out / "train.csv", 48), "valid": config.data.valid}
        config = config.model_copy(update={"data": config.data.model_copy(update=data)})
    else:
        (out / "notes.txt").write_text("mine")
    before = listing(out)
    result = runner.invoke(app, ["train", "--config", str(write_yaml(config, tmp_path /
                                                                    "run.yaml")),
                                 "--overwrite"])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "LW362" in text, result.output
    expected = {"own_csv": f"would delete this run's own input {out / 'train.csv'}",
                "foreign_file": "would delete files labelwise did not write: notes.txt",
                "no_marker": "replaces only a labelwise output"}[case]
    assert expected in text
    assert listing(out) == before and not (tmp_path / ".out.partial").exists()


def test_tune_overwrite_deletes_only_a_search_output(tmp_path, tiny_model):
    from labelwise.tuning import tune

    out = tmp_path / "out"
    (out / "best").mkdir(parents=True)
    (out / "tune.json").write_text("{}")
    (out / "notes.txt").write_text("mine")
    before = listing(out)
    with pytest.raises(OutputError, match="did not write: notes.txt") as info:
        tune(make_config(tmp_path, tiny_model, search={"n_trials": 1}), overwrite=True)
    assert info.value.code == "LW362" and listing(out) == before


# --- SIGKILL while writing ----------------------------------------------------------------------
def test_sigkill_while_a_checkpoint_is_written_resumes_from_the_last_complete_one(
        tmp_path, tiny_model):
    from labelwise.training.train import train

    config = make_config(tmp_path, tiny_model)
    path = write_yaml(config, tmp_path / "run.yaml")
    proc = child("checkpoint", tmp_path / "flags", "train", "--config", str(path))
    proc.communicate(timeout=600)
    assert proc.returncode == -9
    checkpoints = tmp_path / ".out.partial" / "checkpoints"
    assert (checkpoints / "checkpoint-6").is_dir()  # half written: no marker
    assert not (checkpoints / "checkpoint-6" / "labelwise-complete.json").exists()
    assert (checkpoints / "checkpoint-4" / "labelwise-complete.json").exists()
    result = train(config, resume=True)
    assert result.stats["resumed_from_step"] == 4
    assert result.stats["steps_this_run"] == 4 and result.stats["steps"] == 8
    log = [json.loads(line) for line in (result.output_dir / "train_log.jsonl").open()]
    assert log[-1]["step"] == 8
    assert not (tmp_path / ".out.partial").exists()


def test_sigkill_while_the_final_model_is_saved_is_recovered_by_resume(tmp_path, tiny_model):
    config = make_config(tmp_path, tiny_model)
    path = write_yaml(config, tmp_path / "run.yaml")
    proc = child("final", tmp_path / "flags", "train", "--config", str(path))
    proc.communicate(timeout=600)
    assert proc.returncode == -9
    work = tmp_path / ".out.partial"
    assert (work / "final.saving" / "labelwise.json").exists() and not (work / "final").exists()
    last = work / "checkpoints" / "checkpoint-8"  # complete, but mid-epoch: not resumed from
    assert (last / "trainer_state.json").exists()
    ahead = time.time() + 60  # a clock that ran ahead: Trainer's rotation would take the
    os.utime(last, (ahead, ahead))  # stale checkpoint-8 for the newest and delete fresh ones
    result = runner.invoke(app, ["train", "--config", str(path), "--resume", "--no-report"])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "removing" in said and "checkpoint-8: the run goes on from an earlier" in said
    out = tmp_path / "out"
    stats = manifest(out)["stats"]
    assert (out / "README.md").exists() and stats["steps"] == 8  # not one step past
    assert stats["steps_this_run"] == 8 - stats["resumed_from_step"]
    assert f"resumed at step {stats['resumed_from_step']} of 8" in " ".join(
        result.output.split())
    assert not work.exists()


def test_a_run_killed_after_saving_is_published_by_resume(tmp_path, tiny_model, monkeypatch):
    import labelwise.outputs.safety as safety
    from labelwise.training.train import train

    config = make_config(tmp_path, tiny_model, max_steps=2)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(safety, "publish_dir", killed)
    with pytest.raises(KeyboardInterrupt):
        train(config)
    monkeypatch.undo()
    saved = manifest(tmp_path / ".out.partial" / "final")
    result = train(config, resume=True)
    assert manifest(result.output_dir)["created"] == saved["created"]  # the saved model
    assert result.metrics == json.loads((result.output_dir / "metrics.json").read_text())
    assert not (tmp_path / ".out.partial").exists()


# --- a full disk --------------------------------------------------------------------------------
def test_disk_full_during_a_checkpoint(tmp_path, tiny_model, tmpfs):
    volume = tmpfs(tmp_path / "volume", size="200k")  # a checkpoint of the tiny BERT: ~316 KB
    config = write_yaml(make_config(tmp_path, tiny_model, out=volume / "out"),
                        tmp_path / "run.yaml")
    result = runner.invoke(app, ["train", "--config", str(config)])
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "LW363 no space left on device (while writing" in text and "checkpoint-" in text
    assert list(volume.iterdir()) == []  # the partial run is gone, the disk free again
    assert "Traceback" not in result.output


def test_disk_full_while_writing_the_report(tmp_path, tiny_model, tmpfs):
    volume = tmpfs(tmp_path / "volume", size="2m")  # the model fits, the 4.5 MB report not
    out = volume / "out"
    config = write_yaml(make_config(tmp_path, tiny_model, out=out, max_steps=2),
                        tmp_path / "run.yaml")
    result = runner.invoke(app, ["train", "--config", str(config)])
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "LW363 no space left on device (while writing" in text and "report.html" in text
    assert sorted(p.name for p in out.iterdir()) == sorted(manifest(out)["files"])
    assert not list(volume.rglob("*.tmp")) and not (out / "report.html").exists()


def test_an_atomic_write_that_fails_leaves_the_old_file_and_no_temp(tmp_path, tmpfs):
    from labelwise.outputs.safety import write_atomic

    volume = tmpfs(tmp_path / "volume", size="64k")
    target = write_atomic(volume / "report.html", "old")
    with pytest.raises(OutputError, match="no space left on device") as info:
        write_atomic(target, "x" * (1 << 20))
    assert info.value.code == "LW363"
    assert target.read_text() == "old" and sorted(p.name for p in volume.iterdir()) == [
        "report.html"]


# --- where the output dir is ----------------------------------------------------------------------
@pytest.mark.parametrize("command", ["train", "check"])
@pytest.mark.parametrize("where", ["under_a_file", "read_only"])
def test_an_unwritable_output_dir_is_refused_up_front(tmp_path, tiny_model, tmpfs, command,
                                                      where):
    if where == "under_a_file":
        (tmp_path / "blocker").write_text("a file")
        out = tmp_path / "blocker" / "out"
        message = f"LW361 output_dir is under a file ({tmp_path / 'blocker'} is a file)"
    else:
        out = tmpfs(tmp_path / "ro", size="1m", ro=True) / "out"
        message = "LW361 output_dir is on a read-only filesystem"
    config = write_yaml(make_config(tmp_path, tiny_model, out=out), tmp_path / "run.yaml")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = runner.invoke(app, [command, "--config", str(config)])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    if command == "train":
        assert "loading" not in result.output.lower() and "Traceback" not in result.output


# --- a missing extra ------------------------------------------------------------------------------
BLOCKED = r"""
import sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None  # as if the extra were not installed
from labelwise.cli.app import main
sys.argv = ["labelwise", *sys.argv[2:]]
main()
"""


@pytest.mark.parametrize("blocked, args, extra", [
    ("transformers", ["train", "--train", "t.csv", "-o", "out"], "train"),
    ("torch", ["predict", "model", "t.csv"], "train"),
    ("optuna", ["tune", "--train", "t.csv", "-o", "out"], "tune"),
    ("transformers", ["tune", "--train", "t.csv", "-o", "out"], "tune"),
    ("plotly", ["report", "out"], "train"),
    ("ray", ["tune", "--train", "t.csv", "--backend", "ray", "-o", "out"], "ray"),
])
def test_a_missing_extra_names_its_pip_line(tmp_path, blocked, args, extra):
    done = subprocess.run([sys.executable, "-c", BLOCKED, blocked, *args], env=env(),
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    text = " ".join(done.stderr.split())
    assert done.returncode == 2, done.stderr
    assert "LW401" in text and f"Fix: pip install 'labelwise[{extra}]'" in text
    assert "internal error" not in text and list(tmp_path.iterdir()) == []


# --- Ray's pickled search state -------------------------------------------------------------------
def test_ray_restores_only_the_tuner_state_labelwise_wrote(tmp_path):
    from labelwise.tuning._ray import SEAL_FILE, check_sealed, seal

    experiment = tmp_path / "ray" / "labelwise"
    experiment.mkdir(parents=True)
    (experiment / "tuner.pkl").write_bytes(b"labelwise's own state")
    with pytest.raises(OutputError, match="no record of it") as info:
        check_sealed(tmp_path, experiment)
    assert info.value.code == "LW365" and "restoring a pickle runs its code" in str(info.value)
    seal(tmp_path, experiment)
    check_sealed(tmp_path, experiment)  # the one labelwise wrote: restored
    (experiment / "tuner.pkl").write_bytes(b"someone else's pickle")
    with pytest.raises(OutputError, match="it is not the one labelwise wrote"):
        check_sealed(tmp_path, experiment)
    assert json.loads((tmp_path / SEAL_FILE).read_text())["experiment"] == str(experiment)
