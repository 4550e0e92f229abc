"""train.device and train.precision: resolution on every kind of machine, preflight errors,
bf16 on the CPU, predict's device, GPU memory after a trial, workers pinned to GPUs.

Only torch's device queries are replaced here (``torch.cuda.is_available``,
``device_count``, ``is_bf16_supported``, ``get_device_capability``, MPS availability):
nothing else pretends that a GPU is there.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from labelwise.errors import ConfigError, PreflightError
from labelwise.plan.config import config_from_dict
from labelwise.plan.device import DeviceFacts, compute_findings, resolve_compute
from labelwise.plan.preflight import preflight

CPU = DeviceFacts()
MAC = DeviceFacts(mps=True)
A100 = DeviceFacts(cuda_devices=1, cuda_bf16=True, cuda_capability=(8, 0))
T4x2 = DeviceFacts(cuda_devices=2, cuda_bf16=False, cuda_capability=(7, 5))
H100x4 = DeviceFacts(cuda_devices=4, cuda_bf16=True, cuda_capability=(9, 0))
DDP_CPU = DeviceFacts(world_size=2, rank=1, local_rank=1)
DDP_GPU = DeviceFacts(cuda_devices=2, cuda_bf16=True, cuda_capability=(8, 6), world_size=4,
                      rank=3, local_rank=1)
MACHINES = {"cpu": CPU, "mac": MAC, "a100": A100, "t4x2": T4x2, "h100x4": H100x4,
            "ddp_cpu": DDP_CPU, "ddp_gpu": DDP_GPU}
DEVICES = ["auto", "cpu", "mps", "cuda", "cuda:0", "cuda:1", "cuda:3"]
PRECISIONS = ["auto", "fp32", "bf16", "fp16"]

# (machine, device, precision) -> (device, precision) or the refusing finding's code
EXPECTED = {
    ("cpu", "auto", "auto"): ("cpu", "fp32"),
    ("cpu", "cpu", "fp32"): ("cpu", "fp32"),
    ("cpu", "auto", "bf16"): ("cpu", "bf16"),
    ("cpu", "auto", "fp16"): "LW372",
    ("cpu", "cpu", "fp16"): "LW372",
    ("cpu", "cuda", "auto"): "LW370",
    ("cpu", "cuda:1", "fp32"): "LW370",
    ("cpu", "mps", "auto"): "LW370",
    ("mac", "auto", "auto"): ("mps", "fp32"),
    ("mac", "mps", "fp16"): ("mps", "fp16"),
    ("mac", "cpu", "auto"): ("cpu", "fp32"),
    ("a100", "auto", "auto"): ("cuda:0", "bf16"),
    ("a100", "cuda", "fp16"): ("cuda:0", "fp16"),
    ("a100", "cuda:0", "fp32"): ("cuda:0", "fp32"),
    ("a100", "cuda:1", "auto"): "LW370",
    ("a100", "cpu", "auto"): ("cpu", "fp32"),
    ("a100", "cpu", "fp16"): "LW372",
    ("t4x2", "auto", "auto"): ("cuda:0", "fp16"),
    ("t4x2", "cuda:1", "auto"): ("cuda:1", "fp16"),
    ("t4x2", "auto", "bf16"): "LW373",
    ("t4x2", "cuda:1", "bf16"): "LW373",
    ("t4x2", "cuda:3", "fp32"): "LW370",
    ("t4x2", "mps", "auto"): "LW370",
    ("h100x4", "cuda:3", "auto"): ("cuda:3", "bf16"),
    ("ddp_cpu", "auto", "auto"): ("cpu", "fp32"),
    ("ddp_cpu", "cpu", "bf16"): ("cpu", "bf16"),
    ("ddp_cpu", "cuda", "auto"): "LW370",
    ("ddp_gpu", "auto", "auto"): ("cuda:1", "bf16"),
    ("ddp_gpu", "cuda", "fp16"): ("cuda:1", "fp16"),
    ("ddp_gpu", "cuda:0", "auto"): "LW371",
    ("ddp_gpu", "cpu", "auto"): ("cpu", "fp32"),
}


def _resolve(facts, device, precision):
    try:
        c = resolve_compute(device, precision, facts)
    except ValueError as err:
        return err.finding  # type: ignore[attr-defined]
    return c


@pytest.mark.parametrize("machine,device,precision", list(EXPECTED))
def test_resolution_table(machine, device, precision):
    got = _resolve(MACHINES[machine], device, precision)
    want = EXPECTED[(machine, device, precision)]
    if isinstance(want, str):
        assert got.code == want, got
        assert got.level == "error" and got.fix
    else:
        assert (got.device, got.precision) == want, (got.device_reason, got.precision_reason)
        assert got.device_reason and got.precision_reason


@pytest.mark.parametrize("machine,device,precision",
                         list(itertools.product(MACHINES, DEVICES, PRECISIONS)))
def test_every_combination_is_decided_or_refused_with_a_fix(machine, device, precision):
    facts = MACHINES[machine]
    got = _resolve(facts, device, precision)
    if not hasattr(got, "device"):
        assert got.code in ("LW370", "LW371", "LW372", "LW373") and got.fix
        assert got.where.detail in ("key train.device", "key train.precision")
        return
    kind = got.device.split(":")[0]
    assert kind == "cpu" or (kind == "cuda" and facts.cuda_devices) or (kind == "mps"
                                                                       and facts.mps)
    if kind == "cuda":
        assert int(got.device.split(":")[1]) < facts.cuda_devices
    assert not (kind == "cpu" and got.precision == "fp16")  # fp16 needs a GPU
    assert not (kind == "cuda" and got.precision == "bf16" and not facts.cuda_bf16)
    if precision != "auto":
        assert got.precision == precision  # an explicit choice is kept, or refused
    if device == "cpu":
        assert got.device == "cpu"
    if device == "auto" and precision == "auto":
        assert got.precision == ("fp32" if kind != "cuda" else
                                 "bf16" if facts.cuda_bf16 else "fp16")
    assert got.world_size == facts.world_size


@given(st.integers(0, 8), st.booleans(), st.booleans(), st.integers(1, 8), st.data())
def test_auto_never_refuses_a_single_process(n, bf16, mps, _, data):
    facts = DeviceFacts(cuda_devices=n, cuda_bf16=bf16 and n > 0, mps=mps,
                        cuda_capability=(8, 0) if n else None)
    c = resolve_compute("auto", "auto", facts)
    assert c.device == ("cuda:0" if n else "mps" if mps else "cpu")
    index = data.draw(st.integers(0, 9))
    got = _resolve(facts, f"cuda:{index}", "fp32")
    assert (getattr(got, "device", None) == f"cuda:{index}") == (index < n)


def test_without_facts_only_the_impossible_everywhere_is_refused():
    assert compute_findings("auto", "fp16", None) == (None, [])  # a GPU may be there
    assert compute_findings("cuda:7", "bf16", None) == (None, [])
    _, found = compute_findings("cpu", "fp16", None, source="run.yaml")
    assert [f.code for f in found] == ["LW372"] and found[0].where.file == "run.yaml"


@pytest.mark.parametrize("value", ["gpu", "cuda:", "CUDA", "cuda:-1", "tpu", ""])
def test_bad_device_names_are_config_errors(value):
    with pytest.raises(ConfigError, match=r"'train.device' must be auto, cpu, mps, "
                       r"cuda or cuda:<index>") as err:
        config_from_dict({"data": {"train": "x.csv"}, "train": {"device": value}})
    assert err.value.code == "LW303"


def test_new_keys_are_known_and_default_off():
    cfg = config_from_dict({"data": {"train": "x.csv"}, "search": {"trials_per_gpu": 2}})
    t = cfg.train
    assert (t.device, t.precision, t.gradient_checkpointing, t.torch_compile) == (
        "auto", "auto", False, False)
    assert cfg.search.trials_per_gpu == 2
    with pytest.raises(ConfigError, match="did you mean 'train.precision'"):
        config_from_dict({"data": {"train": "x.csv"}, "train": {"precisio": "bf16"}})


# -- preflight -----------------------------------------------------------------------------

def _config(tmp_path, tiny_model, **train):
    from tuning_data import data

    return config_from_dict({"data": {"train": data(tmp_path / "train.csv", 32, 1),
                                      "valid": data(tmp_path / "valid.csv", 16, 2)},
                             "model": {"name_or_path": str(tiny_model), "max_length": 16},
                             "train": {"max_steps": 2, "batch_size": 8, **train},
                             "output_dir": str(tmp_path / "out")})


def test_preflight_refuses_impossible_choices_with_the_fix(tmp_path, tiny_model):
    config = _config(tmp_path, tiny_model, precision="bf16")
    with pytest.raises(PreflightError) as err:
        preflight(config, source="run.yaml", facts=T4x2)
    (finding,) = [f for f in err.value.findings if f.code == "LW373"]
    assert finding.message == ("train.precision is bf16, but the GPU does not support it "
                               "(compute capability 7.5; bf16 needs 8.0 or later)")
    assert finding.fix == "set train.precision: fp16 or auto"
    assert finding.where.file == "run.yaml" and finding.where.detail == "key train.precision"
    with pytest.raises(PreflightError, match="LW372 train.precision is fp16, but the run "
                       "trains on the CPU"):
        preflight(_config(tmp_path, tiny_model, precision="fp16"), facts=CPU)
    with pytest.raises(PreflightError, match="LW372"):  # refused without facts too
        preflight(_config(tmp_path, tiny_model, precision="fp16", device="cpu"))
    assert not (tmp_path / "out").exists()


def test_plan_prints_device_and_precision_once_with_the_reason(tmp_path, tiny_model):
    plan = preflight(_config(tmp_path, tiny_model), facts=A100)
    lines = [line for line in plan.lines() if line.startswith(("device=", "precision="))]
    assert lines == ["device=cuda:0 (auto: CUDA is available (1 GPU))",
                     "precision=bf16 (auto: the GPU computes in bf16 (compute capability "
                     "8.0))"]
    assert plan.to_dict()["compute"] == {"device": "cuda:0", "precision": "bf16",
                                         "world_size": 1}
    plan = preflight(_config(tmp_path, tiny_model), facts=DDP_CPU)
    shown = dict(line.split("=", 1) for line in plan.lines())
    assert shown["processes"].startswith("2 (torchrun")
    assert shown["effective_batch"].startswith("16 (train.batch_size 8 in each of 2")
    assert shown["length_bucketing"].startswith("on, batches dealt to 2 processes")
    unresolved = preflight(_config(tmp_path, tiny_model))
    assert [line for line in unresolved.lines() if line.startswith("device")] == [
        "device=auto (resolved when training starts (auto: CUDA, else MPS, else the CPU))"]
    assert not any(line.startswith("precision") for line in unresolved.lines())


# -- the queries ---------------------------------------------------------------------------

def _gpus(monkeypatch, n, bf16=True, capability=(8, 0), mps=False):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: capability)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


def test_device_facts_come_from_the_queries_and_the_launcher(monkeypatch):
    from labelwise.training.device import device_facts

    _gpus(monkeypatch, 2, bf16=False, capability=(7, 5))
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert device_facts() == T4x2
    assert device_facts(gpus=0) == DeviceFacts()  # Ray granted no GPU: the CPU
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    _gpus(monkeypatch, 2, bf16=True, capability=(8, 6))
    assert device_facts() == DDP_GPU
    _gpus(monkeypatch, 0, mps=True)
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert device_facts().mps and device_facts().cuda_devices == 0


def test_this_machine_has_no_gpu_and_trains_as_before():
    """What a CPU-only machine resolves to: exactly main's TrainingArguments switches."""
    from labelwise.training.device import device_facts, training_arguments

    facts = device_facts()
    assert facts.cuda_devices == 0
    compute = resolve_compute("auto", "auto", facts)
    assert (compute.device, compute.precision) == ("cpu", "fp32")
    args = training_arguments(compute, output_dir="unused", report_to=[])
    assert (args.use_cpu, args.bf16, args.fp16, args.activation_checkpointing,
            args.torch_compile, args.n_gpu) == (True, False, False, False, False, 0)
    assert str(args.device) == "cpu"


def test_predict_device_is_checked(tmp_path, monkeypatch):
    from labelwise.training.device import resolve_device

    assert resolve_device("auto") == "cpu" and resolve_device("cpu") == "cpu"
    with pytest.raises(ConfigError, match="device is cuda:1, but no CUDA device is visible"):
        resolve_device("cuda:1")
    with pytest.raises(ConfigError, match="unknown device 'gpu'"):
        resolve_device("gpu")
    _gpus(monkeypatch, 2)
    assert resolve_device("auto") == "cuda:0" and resolve_device("cuda:1") == "cuda:1"


# -- training ------------------------------------------------------------------------------

def test_bf16_on_the_cpu_trains_under_autocast(tmp_path, tiny_model):
    """precision: bf16 on the CPU: the forward passes of training run in bf16 (autocast),
    the saved weights stay fp32, evaluation and the saved model work."""
    import json

    import torch
    from transformers import TrainerCallback

    from labelwise.training.predict import predict
    from labelwise.training.train import train

    seen: set[torch.dtype] = set()

    class Watch(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kw):
            model.classifier.register_forward_hook(
                lambda mod, inp, out: seen.add(out.dtype) if mod.training else None)

    config = _config(tmp_path, tiny_model, precision="bf16", max_steps=3)
    result = train(config, callbacks=[Watch()])
    assert seen == {torch.bfloat16}
    assert result.stats["precision"] == "bf16" and result.stats["device"] == "cpu"
    manifest = json.loads((tmp_path / "out" / "labelwise.json").read_text())
    assert manifest["plan"]["compute"] == {"device": "cpu", "precision": "bf16",
                                           "world_size": 1}
    from safetensors.torch import load_file

    weights = load_file(tmp_path / "out" / "model.safetensors")
    assert {w.dtype for w in weights.values()} == {torch.float32}
    assert 0.0 <= result.metrics["valid"]["accuracy"] <= 1.0
    preds = predict(tmp_path / "out", ["good film", "bad plot"], device="cpu")
    assert len(preds) == 2


def test_fp32_on_the_cpu_runs_no_autocast_and_checkpointing_passes_through(tmp_path,
                                                                         tiny_model):
    import torch
    from transformers import TrainerCallback

    from labelwise.training.train import train

    seen: dict[str, object] = {}

    class Watch(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kw):
            seen["checkpointing"] = model.is_activation_checkpointing
            seen["args"] = (args.use_cpu, args.bf16, args.fp16)

            def hook(mod, inp, out):
                seen.setdefault("dtype", out.dtype)

            model.classifier.register_forward_hook(hook)

    train(_config(tmp_path, tiny_model, gradient_checkpointing=True), callbacks=[Watch()])
    assert seen == {"checkpointing": True, "args": (True, False, False),
                    "dtype": torch.float32}


# -- tuning --------------------------------------------------------------------------------

@pytest.mark.parametrize("workers,gpus,per_gpu,want", [
    (4, ["0", "1", "2", "3"], 1, ["0", "1", "2", "3"]),
    (2, ["0", "1", "2", "3"], 1, ["0", "1"]),
    (4, ["0", "1"], 2, ["0", "1", "0", "1"]),
    (3, ["4", "6"], 2, ["4", "6", "4"]),
    (3, [], 1, [None, None, None]),
    (1, ["0"], 1, ["0"]),
])
def test_workers_get_their_own_gpu_or_share_when_asked(workers, gpus, per_gpu, want):
    from labelwise.tuning._gpus import gpu_assignment

    assert gpu_assignment(workers, gpus, per_gpu) == want


@given(st.integers(1, 64), st.integers(0, 8), st.integers(1, 8))
def test_no_gpu_holds_more_workers_than_trials_per_gpu(workers, n_gpus, per_gpu):
    from labelwise.tuning._gpus import gpu_assignment

    gpus = [str(i) for i in range(n_gpus)]
    if n_gpus and workers > n_gpus * per_gpu:
        with pytest.raises(ConfigError, match=f"workers={workers} needs {workers} GPU "
                           "slots") as err:
            gpu_assignment(workers, gpus, per_gpu)
        assert err.value.code == "LW355" and "search.trials_per_gpu" in err.value.fix
        return
    pins = gpu_assignment(workers, gpus, per_gpu)
    assert len(pins) == workers
    if n_gpus:
        counts = [pins.count(g) for g in gpus]
        assert max(counts) <= per_gpu and max(counts) - min(counts) <= 1


def test_visible_gpu_ids_follow_cuda_visible_devices():
    from labelwise.tuning._gpus import visible_gpu_ids

    assert visible_gpu_ids(3, None) == ["0", "1", "2"]
    assert visible_gpu_ids(2, "5, 7") == ["5", "7"]
    assert visible_gpu_ids(0, "") == []


def test_worker_processes_get_cuda_visible_devices(tmp_path, tiny_model, monkeypatch):
    """tune --workers 2 on a (queried) 2-GPU machine starts each worker with one GPU."""
    import subprocess

    from tuning_data import make

    from labelwise.tuning import _optuna

    _gpus(monkeypatch, 2, bf16=True)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    started = []

    class Recorded:
        def __init__(self, cmd, env=None):
            started.append((cmd[cmd.index("--worker") + 1], env.get("CUDA_VISIBLE_DEVICES")))

        returncode = 0

        def wait(self, timeout=None):
            return 0

        def poll(self):
            return 0

    monkeypatch.setattr(subprocess, "Popen", Recorded)
    config = make(tmp_path, tiny_model, n_trials=2, train={"device": "cpu"})
    plan = preflight(config, search=True, facts=CPU)
    backend = _optuna.OptunaBackend(workers=2)
    assert backend._gpu_pins(plan) == [None, None]  # train.device: cpu: no GPU for anyone
    config = make(tmp_path, tiny_model, n_trials=2, search={"trials_per_gpu": 1})
    plan = preflight(config, search=True, facts=A100)
    (tmp_path / "out").mkdir(exist_ok=True)
    backend._spawn(plan, "sqlite:///unused.db", "s", 2, None, tmp_path / "out",
                   lambda: None, backend._gpu_pins(plan))
    assert started == [("0", "0"), ("1", "1")]
    with pytest.raises(ConfigError, match="workers=3 needs 3 GPU slots"):
        _optuna.OptunaBackend(workers=3)._gpu_pins(plan)


def test_out_of_gpu_memory_fails_one_trial_and_the_search_goes_on(tmp_path, tiny_model,
                                                                 monkeypatch):
    import pandas as pd
    import torch
    from tuning_data import make

    import labelwise.tuning._runner as runner_mod
    from labelwise.training.trainer import LabelwiseTrainer
    from labelwise.tuning import tune

    real_step = LabelwiseTrainer.training_step
    trials = {"n": 0}
    released = []

    def step(self, *args, **kwargs):
        if trials["n"] == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_step(self, *args, **kwargs)

    real_fit = runner_mod.fit

    def counting_fit(*args, **kwargs):
        trials["n"] += 1
        return real_fit(*args, **kwargs)

    real_release = runner_mod.TrialRunner.release
    monkeypatch.setattr(LabelwiseTrainer, "training_step", step)
    monkeypatch.setattr(runner_mod, "fit", counting_fit)
    monkeypatch.setattr(runner_mod.TrialRunner, "release",
                        lambda self: (released.append(trials["n"]), real_release(self)))
    result = tune(make(tmp_path, tiny_model, n_trials=3, search={"pruner": "none"}))
    assert [t.state for t in result.trials] == ["COMPLETE", "FAIL", "COMPLETE"]
    reason = result.trials[1].reason
    assert reason.startswith("out of GPU memory: lower train.batch_size or set "
                             "train.gradient_checkpointing (OutOfMemoryError: CUDA out of "
                             "memory."), reason
    csv = pd.read_csv(tmp_path / "out" / "trials.csv")
    assert csv["reason"].fillna("").tolist()[1] == reason
    assert released[-3:] == [1, 2, 3]  # after every trial, the failed one too


def test_release_without_cuda_touches_no_cuda(monkeypatch):
    import torch

    from labelwise.training.device import release_device_memory

    def refuse():
        raise AssertionError("empty_cache on a machine without CUDA")

    monkeypatch.setattr(torch.cuda, "empty_cache", refuse)
    release_device_memory()  # is_available() is False here: nothing to release


@pytest.mark.parametrize("gpus,device", [(0.0, "cpu"), (1.0, "cuda:0"), (0.5, "cuda:0")])
def test_ray_gpus_per_trial_reach_the_trainer(tmp_path, tiny_model, monkeypatch, gpus,
                                              device):
    """What Ray reserves is what the trial's plan trains on (the node has a GPU here)."""
    pytest.importorskip("ray")
    from tuning_data import make

    import labelwise.tuning._runner as runner_mod
    from labelwise.tuning import _ray
    from labelwise.tuning._runner import study_key
    from labelwise.plan.space import search_space

    _gpus(monkeypatch, 1, bf16=True)
    built = {}

    class Runner:
        def __init__(self, plan, space, threads=None):
            built["compute"] = plan.compute

    monkeypatch.setattr(runner_mod, "TrialRunner", Runner)
    monkeypatch.setattr(_ray, "_RUNNERS", {})
    config = make(tmp_path, tiny_model)
    plan = preflight(config, search=True, facts=A100)
    space, _ = search_space(config)
    spec = {"config": config.model_dump(mode="json"), "key": study_key(plan, space),
            "cpus": 1, "gpus": gpus}
    _ray._runner_for(spec)
    assert built["compute"].device == device
    assert built["compute"].precision == ("fp32" if device == "cpu" else "bf16")
