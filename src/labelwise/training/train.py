"""``train``: preflight, tokenize once, fine-tune on transformers' Trainer, evaluate, save.

The pieces are separate so that tuning reuses them: :func:`prepare` (tokenizer, token ids
and targets of every split, built once), :func:`build_model`, :func:`fit` (one Trainer run),
:func:`final_metrics` (thresholds tuned on validation, metrics of every split) and
:func:`~labelwise.outputs.model_dir.save_model_dir`.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labelwise.training._memory import frozen_heap, trim_heap
from labelwise.outputs.model_dir import save_model_dir
from labelwise.outputs.names import RESUME_PLAN, no_output_dir
from labelwise.plan.config import RunConfig, config_from_call
from labelwise.training.progress import presented
from labelwise.errors import ConfigError, SchemaMismatchError
from labelwise.plan.preflight import Plan, preflight
from labelwise.scoring.diagnosis import Diagnosis
from labelwise.scoring.thresholds import Thresholds
from labelwise.training.tokens import Encoded, cache_dir, encode_texts
from labelwise.plan.contract import to_targets
from labelwise.training.heads import init_head_bias, new_parameters, reinit_head
from labelwise.scoring.evaluation import evaluate_logits

__all__ = ["TrainResult", "Prepared", "train", "prepare", "build_model", "fit",
           "final_metrics", "set_threads"]

logger = logging.getLogger("labelwise")
# splits this long keep their texts memory-mapped from the token cache for the run (at 1M
# ag_news rows, 200 MB less of the process's own memory); shorter ones stay as read
MAP_TEXTS_ROWS = 50_000


@dataclass(frozen=True)
class TrainResult:
    """What ``train`` produced: the model dir, metrics per split, thresholds, timings, and
    the findings after training (``diagnosis.findings``: what the model cannot do)."""

    output_dir: Path
    metrics: dict[str, dict[str, Any]]
    thresholds: Thresholds | None
    plan: Plan
    stats: dict[str, Any] = field(default_factory=dict)
    main_process: bool = True  # False in the other processes of a torchrun run
    diagnosis: Diagnosis = field(default_factory=Diagnosis)


@dataclass
class Prepared:
    """Everything a run needs that does not change between trials."""

    plan: Plan
    tokenizer: Any
    encoded: dict[str, Encoded]
    labels: dict[str, np.ndarray]
    pad_id: int
    sep_id: int
    base_state: dict[str, Any] | None = None
    templates: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    _used_ids: dict[int, np.ndarray] = field(default_factory=dict)

    def targets(self, split: str, plan: Plan | None = None) -> np.ndarray:
        """The split's targets in the dtype and shape of ``plan``'s contract."""
        return to_targets(self.labels[split], (plan or self.plan).contract)

    def encoded_at(self, split: str, max_length: int) -> Encoded:
        """The split cut to ``max_length`` (shared longest tokenization)."""
        enc = self.encoded[split]
        return enc if max_length >= enc.max_length else enc.cut(max_length, self.sep_id)

    def used_ids(self, max_length: int) -> np.ndarray:
        """The token ids that training and validation batches can hold at ``max_length``."""
        from labelwise.training.embedding_rows import used_token_ids

        if max_length not in self._used_ids:
            self._used_ids[max_length] = used_token_ids(
                *(self.encoded_at(s, max_length).ids for s in ("train", "valid")),
                special_ids=list(self.tokenizer.all_special_ids))
        return self._used_ids[max_length]


def set_threads(config: RunConfig) -> int:
    """``torch.set_num_threads`` from ``train.threads`` or the cores this process may use."""
    import torch

    from labelwise.training.device import launcher_env

    # torchrun processes on one node share its cores
    n = max(1, config.train.threads or len(os.sched_getaffinity(0)) // launcher_env()[3])
    torch.set_num_threads(n)
    return n


def _load_tokenizer(plan: Plan) -> Any:
    from transformers import AutoTokenizer

    m = plan.config.model
    return AutoTokenizer.from_pretrained(plan.model.name_or_path, revision=m.revision,
                                         trust_remote_code=m.trust_remote_code)


def prepare(plan: Plan, *, max_length: int | None = None, use_cache: bool = True) -> Prepared:
    """Load the tokenizer, tokenize every split once (cached), encode the targets."""
    from labelwise.training.progress import current

    tokenizer = _load_tokenizer(plan)
    length = max_length or plan.config.model.max_length
    data = plan.data
    encoded, labels = {}, {}
    reporter = current()
    bar = reporter.bar("tokenizing", total=sum(len(data.frames[s]) for s in data.splits),
                       unit="row") if reporter else None
    for split in data.splits:
        texts = data.text_slices(split)  # one chunk of Python strings at a time
        pairs = (data.text_slices(split, data.text_pair_column) if data.text_pair_column
                 else None)
        encoded[split] = encode_texts(tokenizer, texts, pairs, max_length=length,
                                      use_cache=use_cache,
                                      on_rows=bar.update if bar is not None else None)
        labels[split] = plan.schema.encode_coded(data.coded(split, plan.schema), split=split)
    if bar is not None:
        bar.close()
    if use_cache:  # the tokens are mapped from the cache; so are the texts of large splits
        data.map_texts(cache_dir() / "texts", min_rows=MAP_TEXTS_ROWS)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    sep = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else (
        tokenizer.eos_token_id or 0)
    return Prepared(plan, tokenizer, encoded, labels, int(pad), int(sep))


def load_base_state(plan: Plan) -> dict[str, Any]:
    """The pretrained weights without the new head, loaded once and kept in memory."""
    model, info = build_model(plan, loading_info=True)
    head = new_parameters(model, loading_info=info)
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k not in head}


def build_model(plan: Plan, *, base_state: dict[str, Any] | None = None,
                config: RunConfig | None = None, loading_info: bool = False) -> Any:
    """The classifier with the contract's head; from memory when ``base_state`` is given."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    cfg = config or plan.config
    c, s = plan.contract, plan.schema
    if c.num_labels == 1 and s.task.value == "binary":
        id2label = {0: str(s.positive)}
    else:
        id2label = dict(enumerate(s.label_names))
    kwargs: dict[str, Any] = {"num_labels": c.num_labels, "id2label": id2label,
                              "label2id": {v: k for k, v in id2label.items()},
                              "problem_type": c.problem_type}
    if cfg.model.dropout is not None:
        kwargs.update(hidden_dropout_prob=cfg.model.dropout,
                      attention_probs_dropout_prob=cfg.model.dropout,
                      classifier_dropout=cfg.model.dropout)
    common = {"revision": cfg.model.revision, "trust_remote_code": cfg.model.trust_remote_code}
    if base_state is not None:
        import torch

        hf_config = AutoConfig.from_pretrained(plan.model.name_or_path, **kwargs, **common)
        model = AutoModelForSequenceClassification.from_config(
            hf_config, trust_remote_code=cfg.model.trust_remote_code)
        with torch.no_grad():
            model.load_state_dict(base_state, strict=False)
        return model
    return AutoModelForSequenceClassification.from_pretrained(
        plan.model.name_or_path, ignore_mismatched_sizes=cfg.model.reinit_head, **kwargs,
        output_loading_info=loading_info, **common)


def _training_args(cfg: RunConfig, plan: Plan, work: Path, n_train: int, *,
                   save: bool) -> Any:
    from labelwise.training.device import compute_for, training_arguments
    from labelwise.training.forward import eval_batch_size
    from labelwise.training.trainer import steps_per_epoch

    t = cfg.train
    compute = compute_for(plan, cfg)
    # under torchrun each optimizer step takes one batch from each of world_size processes
    per_epoch = steps_per_epoch(n_train, t.batch_size * compute.world_size,
                                t.gradient_accumulation_steps)
    # Rounded up, so that the last evaluation falls on the last step: rounded down, Trainer
    # evaluates a few steps after the last scheduled evaluation again (at the end of
    # training), which on sst2 at batch 16 (625 steps an epoch, 2 evaluations) cost a fifth
    # evaluation of the validation split for 2 steps of training.
    eval_steps = max(1, math.ceil(per_epoch / t.evals_per_epoch))
    metric, direction = plan.objective
    return training_arguments(
        compute,
        activation_checkpointing=t.gradient_checkpointing,  # gradient_checkpointing before 5
        torch_compile=t.torch_compile,
        output_dir=str(work / "checkpoints"),
        num_train_epochs=t.epochs,
        max_steps=t.max_steps or -1,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=eval_batch_size(t, compute.device),
        learning_rate=t.learning_rate,
        weight_decay=t.weight_decay,
        warmup_steps=t.warmup_ratio,
        lr_scheduler_type=t.lr_scheduler,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        max_grad_norm=t.max_grad_norm,
        seed=t.seed,
        eval_strategy="steps",
        eval_steps=eval_steps,
        save_strategy="steps" if save else "no",
        save_steps=eval_steps,
        save_total_limit=2 if save else None,
        load_best_model_at_end=save,
        metric_for_best_model=f"eval_{metric}",
        greater_is_better=direction == "maximize",
        logging_steps=max(1, min(50, eval_steps // 2)),
        report_to=[],
        disable_tqdm=True,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        label_names=["labels"],
    )


@dataclass
class FitResult:
    """One Trainer run: the (best) model, the log, and where the time went."""

    model: Any
    log_history: list[dict[str, Any]]
    train_seconds: float
    step_seconds: float
    steps: int
    samples_per_second: float
    pad_share: float
    best_metric: float | None
    last_eval: tuple[int, np.ndarray, np.ndarray] | None = None  # (step, logits, targets)
    embedding_rows: int | None = None  # word-embedding rows trained (None: all of them)

    @property
    def final_eval(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Logits and targets of the validation split from the last evaluation when it
        was on the last step (the returned model's outputs, in evaluation order, longest
        text first); else None."""
        if self.last_eval is None or self.last_eval[0] != self.steps:
            return None
        return self.last_eval[1], self.last_eval[2]


def _new_model(prepared: Prepared, plan: Plan) -> tuple[Any, set[str]]:
    """A model for ``plan`` and the names of its new head's parameters, whose output bias
    starts at the training prior when the plan says so (``Plan.head_bias_at_prior``)."""
    from transformers import set_seed

    cfg = plan.config
    set_seed(cfg.train.seed)  # the new head's initial weights follow the run's seed
    if prepared.base_state is not None:
        # A copy of a model built once per head shape, with a new head of this seed:
        # building from the config initialises every weight before the base weights
        # replace them (0.5 s a trial for MiniLM, against 0.04 s for the copy).
        key = (plan.contract.num_labels, plan.contract.problem_type, cfg.model.dropout)
        if key not in prepared.templates:
            prepared.templates[key] = build_model(plan, base_state=prepared.base_state,
                                                  config=cfg)
        model = copy.deepcopy(prepared.templates[key])
        head = new_parameters(model, base_state=prepared.base_state)
        set_seed(cfg.train.seed)
        reinit_head(model, head)
    else:
        model, info = build_model(plan, config=cfg, loading_info=True)
        head = new_parameters(model, loading_info=info)
    if plan.head_bias_at_prior:
        init_head_bias(model, new=head, targets=prepared.targets("train", plan),
                       contract=plan.contract)
    return model, head


def _cut_embeddings(model: Any, prepared: Prepared, plan: Plan) -> Any:
    """Cut the word embeddings to the rows the data uses when the plan says that trains the
    same model (see ``labelwise.training.embedding_rows``)."""
    from labelwise.training.embedding_rows import cut_word_embeddings

    if not plan.cuts_embedding_rows:
        return None
    return cut_word_embeddings(model, prepared.used_ids(plan.config.model.max_length))


def fit(prepared: Prepared, *, plan: Plan | None = None, work: Path,
        callbacks: Sequence[Any] = (), resume_from: str | None = None, save: bool = True,
        model: Any = None) -> FitResult:
    """Train one model on ``prepared`` with ``plan`` (default: the prepared plan; a trial
    passes its own plan, whose config and contract may differ)."""
    from transformers import PrinterCallback, TrainerCallback

    from labelwise.training.batching import EncodedDataset, pad_stats
    from labelwise.training.trainer import LabelwiseTrainer, StepTimer, collator_for

    plan = plan or prepared.plan
    cfg = plan.config
    max_length = cfg.model.max_length
    train_ds = EncodedDataset(prepared.encoded_at("train", max_length),
                              prepared.targets("train", plan))
    valid_ds = EncodedDataset(prepared.encoded_at("valid", max_length),
                              prepared.targets("valid", plan))
    trim_heap()
    head: set[str] = set()
    if model is None:
        model, head = _new_model(prepared, plan)
    last: dict[str, Any] = {}

    def metrics_fn(pred: Any) -> dict[str, float]:
        logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
        last["eval"] = (np.asarray(logits), np.asarray(pred.label_ids))
        metrics, _ = evaluate_logits(np.asarray(logits), np.asarray(pred.label_ids),
                                     contract=plan.contract, schema=plan.schema, tune=True,
                                     full=False, threshold_metric=plan.threshold_metric)
        return metrics

    class _Step(TrainerCallback):
        def on_evaluate(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if "eval" in last:
                last["step"] = state.global_step

    timer = StepTimer()
    extra = list(callbacks)
    if save and cfg.train.early_stopping_patience:
        from transformers import EarlyStoppingCallback

        extra.append(EarlyStoppingCallback(cfg.train.early_stopping_patience))
    cut = _cut_embeddings(model, prepared, plan)
    collator = collator_for(prepared.pad_id, plan.contract)
    trainer = LabelwiseTrainer(model=model, args=_training_args(cfg, plan, work, len(train_ds),
                                                                 save=save),
                               train_dataset=train_ds, eval_dataset=valid_ds,
                               data_collator=collator, compute_metrics=metrics_fn,
                               callbacks=[timer, _Step(), *extra], contract=plan.contract,
                               bucket=cfg.train.length_bucketing, head_parameters=head,
                               head_learning_rate=cfg.train.head_learning_rate)
    trainer.remove_callback(PrinterCallback)
    start = time.perf_counter()
    out = trainer.train(resume_from_checkpoint=resume_from)
    seconds = time.perf_counter() - start
    trained = cut.restore(trainer.model) if cut is not None else trainer.model
    stats = pad_stats(collator)
    last_eval = (last["step"], *last["eval"]) if "step" in last and not save else None
    return FitResult(trained, list(trainer.state.log_history), seconds,
                     timer.step_seconds, int(out.global_step),
                     float(out.metrics.get("train_samples_per_second", 0.0)),
                     stats["pad_share"], trainer.state.best_metric, last_eval,
                     cut.rows if cut is not None else None)


def final_metrics(prepared: Prepared, model: Any, *, plan: Plan | None = None,
                  splits: Sequence[str] | None = None, batch_size: int | None = None,
                  thresholds: Thresholds | None = None,
                  valid_eval: tuple[np.ndarray, np.ndarray] | None = None,
                  keep: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
                  ) -> tuple[dict[str, dict[str, Any]], Thresholds | None]:
    """Thresholds tuned on validation, then the full metrics of each split with them.

    ``valid_eval`` (logits and targets of the last evaluation, in any row order)
    saves a forward pass; ``thresholds`` skips tuning; ``keep`` receives the logits and
    targets of each split."""
    from labelwise.scoring.evaluation import evaluate_logits
    from labelwise.training.forward import predict_logits

    plan = plan or prepared.plan
    length = plan.config.model.max_length
    out: dict[str, dict[str, Any]] = {}
    for split in splits or [s for s in ("valid", "test") if s in prepared.encoded]:
        if split == "valid" and valid_eval is not None:
            logits, targets = valid_eval
        else:
            logits = predict_logits(model, prepared.encoded_at(split, length),
                                    pad_id=prepared.pad_id, batch_size=batch_size)
            targets = prepared.targets(split, plan)
        if keep is not None:
            keep[split] = (np.asarray(logits), np.asarray(targets))
        tune = split == "valid" and thresholds is None
        out[split], tuned = evaluate_logits(logits, targets, contract=plan.contract,
                                            schema=plan.schema, thresholds=thresholds,
                                            tune=tune, threshold_metric=plan.threshold_metric)
        if tune:
            thresholds = tuned
    return out, thresholds


def _compute_stats(plan: Plan) -> dict[str, Any]:
    """Device, precision and processes of the run, and the GPU memory it peaked at."""
    from labelwise.training.device import compute_for, peak_gpu_memory

    compute = compute_for(plan)
    out: dict[str, Any] = {"device": compute.device, "precision": compute.precision,
                           "processes": compute.world_size}
    peak = peak_gpu_memory()
    if peak is not None:
        out["peak_gpu_memory_mb"] = round(peak / 2**20, 1)
    return out


def _output_dir(cfg: RunConfig, overwrite: bool, resume: bool,
                source: str | None) -> tuple[Path, bool]:
    """The output dir, refused before anything is loaded when it cannot take this run, and
    whether it may be replaced (``--resume`` keeps the ``--overwrite`` of the run it
    continues)."""
    import json

    from labelwise.outputs.model_dir import MANIFEST, model_dir_files
    from labelwise.outputs.safety import (SWAP_STATE, check_output_dir, check_replaceable,
                                          work_dir)

    if not cfg.output_dir:
        raise no_output_dir()
    out = check_output_dir(cfg.output_dir)
    work = work_dir(out)
    if resume and (work / SWAP_STATE).exists():
        return out, True  # a model was being moved into place: finish that
    if resume and (work / RESUME_PLAN).exists():
        with contextlib.suppress(OSError, ValueError):
            overwrite = overwrite or bool(json.loads((work / RESUME_PLAN).read_text())
                                          .get("overwrite"))
    inputs = [cfg.data.train, cfg.data.valid, cfg.data.test, cfg.model.name_or_path, source]
    check_replaceable(out, overwrite=overwrite, markers=[MANIFEST],
                      known=model_dir_files(out), inputs=[p for p in inputs
                                                         if isinstance(p, (str, Path)) and p])
    return out, overwrite


def _resume_point(work: Path, plan: Plan, resume: bool) -> str | None:
    """The last complete checkpoint to resume from (incomplete ones are removed)."""
    import json

    from labelwise.outputs.safety import is_complete

    marker = work / RESUME_PLAN
    if not resume:
        if work.exists():
            logger.info("removing the unfinished run in %s (pass --resume to continue it)", work)
            shutil.rmtree(work)
        return None
    if not marker.exists():
        logger.info("nothing to resume in %s: starting from the first step", work)
        return None
    saved = {k: v for k, v in json.loads(marker.read_text()).items() if k != "overwrite"}
    now = {"schema": plan.schema.fingerprint, "data": plan.to_dict()["data_fingerprints"]}
    if saved != now:
        raise SchemaMismatchError("cannot resume: the data or labels changed since the run "
                                  f"started (was {saved}, now {now})", where=f"file {work}",
                                  fix="resume with the same data, or start without --resume")
    checkpoints = sorted((work / "checkpoints").glob("checkpoint-*"), key=_step)
    for broken in [c for c in checkpoints if not is_complete(c)]:
        logger.info("removing %s: it was not written to the end", broken)
        shutil.rmtree(broken)
    usable = [c for c in checkpoints if c.exists() and not _ends_mid_epoch(c)]
    # Checkpoints past the resume point are a future this run rewrites. Left in place, one
    # would count as the newest for Trainer's rotation, which then deletes the fresh ones.
    for later in [c for c in checkpoints
                  if c.exists() and (not usable or _step(c) > _step(usable[-1]))]:
        logger.info("removing %s: the run goes on from an earlier checkpoint", later)
        shutil.rmtree(later)
    if not usable:
        return None
    logger.info("resuming from %s", usable[-1])
    return str(usable[-1])


def _step(checkpoint: Path) -> int:
    return int(checkpoint.name.rsplit("-", 1)[1])


def _ends_mid_epoch(checkpoint: Path) -> bool:
    """A checkpoint at ``max_steps`` inside an epoch: Trainer, resumed from it, runs one
    step past ``max_steps`` (it checks the limit after a step), so an earlier one is used."""
    import json

    state = json.loads((checkpoint / "trainer_state.json").read_text())
    return (state["max_steps"] > 0 and state["global_step"] >= state["max_steps"]
            and not float(state.get("epoch") or 0).is_integer())


def _saved_result(final: Path, plan: Plan) -> tuple[dict[str, Any], Thresholds | None,
                                                    dict[str, Any]]:
    """Metrics, thresholds and stats of a model dir saved by a run that died publishing."""
    import json

    from labelwise.outputs.model_dir import MANIFEST

    manifest = json.loads((final / MANIFEST).read_text())
    thresholds = manifest.get("thresholds")
    return (json.loads((final / "metrics.json").read_text()),
            Thresholds.from_dict(thresholds) if thresholds else None, manifest["stats"])


@presented
def train(config: Any = None, *, train: Any = None, valid: Any = None, test: Any = None,
          text_column: str | None = None, text_pair_column: str | None = None,
          label_columns: str | Sequence[str] | None = None, task: str | None = None,
          model: str | None = None, output_dir: str | Path | None = None,
          epochs: float | None = None, max_steps: int | None = None,
          batch_size: int | None = None, learning_rate: float | None = None,
          seed: int | None = None, overwrite: bool = False, resume: bool = False,
          callbacks: Sequence[Any] = (), progress: bool = True, verbose: bool = False,
          source: str | None = None) -> TrainResult:
    """Fine-tune one classifier: preflight, tokenize, train, evaluate, save.

    Example:
        >>> labelwise.train(train=df, valid=df_valid, label_columns=["label"],
        ...                 output_dir="runs/x", epochs=2)  # doctest: +SKIP

    The output dir is checked and locked before anything is loaded (see
    ``labelwise.outputs.safety``); the run is built in a partial dir and published at the
    end, so ``output_dir`` holds the old model or the new one, never part of one.

    Started by ``torchrun`` (or ``accelerate launch``), each process trains its share of
    the batches (data-parallel); process 0 runs preflight and hands the plan to the
    others, writes the output dir and returns the result; the others return a
    ``TrainResult`` with ``main_process=False`` and no metrics.

    Args:
        config: A :class:`RunConfig`, a dict, the path of a YAML/TOML run config, or the
            training data itself (as ``train``).
        train, valid, test: Each split: a file path, a pandas DataFrame, a
            ``datasets.Dataset`` or a list of dicts; ``train`` may be a ``DatasetDict``
            holding the splits by name. Without ``valid``, validation is carved from train.
        text_column, text_pair_column, label_columns, task: The ``data`` keys.
        model: ``model.name_or_path`` (default: the packaged MiniLM).
        output_dir: Where the model dir is written.
        epochs, max_steps, batch_size, learning_rate, seed: The common ``train`` keys;
            anything else goes through ``config``. Keywords override the config.
        overwrite: Replace an output directory that holds a labelwise model.
        resume: Continue an interrupted run from its last complete checkpoint.
        callbacks: Extra ``transformers.TrainerCallback`` objects (the CLI's progress bar).
        progress: Print the plan once and show a bar for tokenizing and for the training
            steps (``tqdm.auto``: a widget in Jupyter, text in a terminal).
        verbose: Let Transformers' load report, its bars and other libraries' INFO lines
            through (silenced by default).
        source: Config file name quoted in messages.

    Raises:
        PreflightError: Any preflight error; nothing is loaded or written.
        ConfigError: No output directory.
        OutputError: The output dir is in use, not writable, not empty (without
            ``overwrite``) or not replaceable, or the disk filled up.
    """
    from labelwise.outputs.safety import hold_output
    from labelwise.training.device import Processes

    config, source = config_from_call(config, locals(), source=source)
    # one process, or one of torchrun's: process 0 checks, locks, writes and logs
    # (group.once runs a call on process 0 and hands its result, or its error, to all)
    group = Processes.start(cpu=config.train.device == "cpu")
    out = group.once(lambda: _output_dir(config, overwrite, resume, source)[0])
    with contextlib.ExitStack() as stack:

        def lock() -> None:  # process 0 holds the output dir's lock for the whole run
            stack.enter_context(hold_output(out, command="labelwise train"))

        group.once(lock)
        out, overwrite = group.once(lambda: _output_dir(config, overwrite, resume, source))
        return _train_locked(config, out, group, overwrite=overwrite, resume=resume,
                             callbacks=callbacks, source=source)


def _train_locked(config: RunConfig, out: Path, group: Any, *, overwrite: bool, resume: bool,
                  callbacks: Sequence[Any], source: str | None) -> TrainResult:
    from labelwise.errors import OutputError
    from labelwise.outputs.model_dir import MANIFEST
    from labelwise.training.tracking import LOGS
    from labelwise.outputs.safety import disk_full_errors, publish_dir, work_dir
    from labelwise.training.device import device_facts

    from labelwise.training.progress import current
    from labelwise.training.tracking import check_report_to

    facts = device_facts()
    plan = group.once(lambda: preflight(config, source=source, facts=facts))
    check_report_to(config.train.report_to)
    reporter = current() if group.main else None
    if group.main:
        plan.log()
        if reporter is not None:
            reporter.plan(plan)
    work = work_dir(out)
    final = work / "final"
    done = group.once(lambda: _finish_interrupted(work, out, plan, resume))
    if done is not None:
        return (TrainResult(out, done[0], done[1], plan, done[2]) if group.main else
                TrainResult(out, {}, None, plan, {"rank": group.rank}, main_process=False))
    # the checkpoint to resume from (without --resume: an unfinished run is removed), then
    # the partial dir and what the run trains on
    resume_from = group.once(lambda: _resume_point(work, plan, resume))
    _started(group, work, plan, overwrite)
    try:
        measured = _fit_and_measure(plan, work, group, callbacks=callbacks,
                                    resume_from=resume_from)
        if measured is None:  # not process 0: it saves the model all of them trained
            return TrainResult(out, {}, None, plan, {"rank": group.rank}, main_process=False)
        result, metrics, thresholds, stats, prepared, diagnosis = measured
        if reporter is not None:
            reporter.findings(diagnosis.findings)
        saving = work / "final.saving"
        with disk_full_errors(saving):
            shutil.rmtree(saving, ignore_errors=True)
            shutil.rmtree(final, ignore_errors=True)
            save_model_dir(saving, plan=plan, model=result.model,
                           tokenizer=prepared.tokenizer, metrics=metrics,
                           thresholds=thresholds, stats=stats,
                           log_history=result.log_history,
                           after_training=diagnosis.to_dict())
            if (work / LOGS).exists():  # tracking logs: inside the model dir, moved with it
                shutil.move(work / LOGS, saving / LOGS)
            os.rename(saving, final)  # ``final`` exists only when complete
            publish_dir(final, out, overwrite=overwrite, manifest=MANIFEST)
    except OutputError as err:
        if err.code == "LW363" and group.main:  # disk full: the partial run would keep it full
            shutil.rmtree(work, ignore_errors=True)
        raise
    shutil.rmtree(work, ignore_errors=True)
    return TrainResult(out, metrics, thresholds, plan, stats, diagnosis=diagnosis)


def _finish_interrupted(work: Path, out: Path, plan: Plan, resume: bool
                        ) -> tuple[dict[str, Any], Thresholds | None, dict[str, Any]] | None:
    """With ``--resume``, finish a run that died after saving its model: its metrics,
    thresholds and stats, or ``None`` when there is nothing of the kind to finish."""
    from labelwise.outputs.model_dir import MANIFEST
    from labelwise.outputs.safety import finish_swap, publish_dir

    final = work / "final"
    if resume and finish_swap(work, out, manifest=MANIFEST):  # died moving it into place
        logger.info("finished publishing the model a previous run saved in %s", work)
        shutil.rmtree(work, ignore_errors=True)
        return _saved_result(out, plan)
    if resume and final.is_dir() and (work / RESUME_PLAN).exists():  # died publishing
        _resume_point(work, plan, resume)  # the same data and labels, or refused
        logger.info("publishing the model a previous run saved in %s", final)
        saved = _saved_result(final, plan)
        publish_dir(final, out, overwrite=True, manifest=MANIFEST)
        shutil.rmtree(work, ignore_errors=True)
        return saved
    return None


def _started(group: Any, work: Path, plan: Plan, overwrite: bool) -> None:
    """Process 0 creates the partial dir and records what the run trains on."""
    import json

    from labelwise.outputs.safety import disk_full_errors, write_atomic

    def start() -> None:
        with disk_full_errors(work):
            work.mkdir(parents=True, exist_ok=True)
            write_atomic(work / RESUME_PLAN, json.dumps({
                "schema": plan.schema.fingerprint,
                "data": plan.to_dict()["data_fingerprints"], "overwrite": overwrite}))

    group.once(start)


def _fit_and_measure(plan: Plan, work: Path, group: Any, *, callbacks: Sequence[Any],
                     resume_from: str | None) -> tuple[FitResult, dict[str, Any],
                                                       Thresholds | None, dict[str, Any],
                                                       Prepared, Diagnosis] | None:
    """Train, then (process 0) evaluate; ``None`` on the other processes."""
    from labelwise.training.progress import current, steps_callback
    from labelwise.training.tracking import LOGS, mlflow_store, tracking_callbacks

    config = plan.config
    threads = set_threads(config)
    started = time.perf_counter()
    prepared = group.first(lambda: prepare(plan))  # process 0 fills the token cache
    prep_seconds = time.perf_counter() - started
    reporter = current() if group.main else None
    steps = ([steps_callback(reporter, metric=plan.objective[0])]
             if reporter is not None and reporter.enabled else [])
    report_to = config.train.report_to
    tracking = tracking_callbacks(report_to, logs_dir=work / LOGS,
                                  run_name=Path(str(config.output_dir)).name)
    with frozen_heap(), mlflow_store(report_to, work / LOGS):
        # the loaded data and weights: out of every collection's scan
        result = fit(prepared, work=work, callbacks=[*steps, *tracking, *callbacks],
                     resume_from=resume_from)
        if not group.main:
            return None
        outputs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        metrics, thresholds = final_metrics(prepared, result.model, keep=outputs)
        diagnosis = _diagnosis(prepared, result, plan, outputs, thresholds)
    # A resumed run counts the steps it ran itself; Trainer's samples per second counts
    # every step of the run, including those done before the resume.
    resumed_at = int(resume_from.rsplit("-", 1)[1]) if resume_from else 0
    ran = max(0, result.steps - resumed_at)
    share = ran / result.steps if result.steps else 1.0
    stats = {"threads": threads, "prepare_seconds": round(prep_seconds, 3),
             "train_seconds": round(result.train_seconds, 3),
             "step_seconds": round(result.step_seconds, 3), "steps": result.steps,
             "steps_this_run": ran, "resumed_from_step": resumed_at,
             "samples_per_second": round(result.samples_per_second * share, 3),
             "pad_share": result.pad_share, "best_metric": result.best_metric,
             "embedding_rows_trained": result.embedding_rows or "all",
             **_compute_stats(plan),
             "total_seconds": round(time.perf_counter() - started, 3)}
    return result, metrics, thresholds, stats, prepared, diagnosis


def _diagnosis(prepared: Prepared, result: FitResult, plan: Plan,
               outputs: dict[str, tuple[np.ndarray, np.ndarray]],
               thresholds: Thresholds | None) -> Diagnosis:
    """The findings after training (:mod:`labelwise.training.after`), logged one a line."""
    from labelwise.training.after import diagnose_run

    if "valid" not in outputs:
        return Diagnosis()
    diagnosis = diagnose_run(prepared, result.model, plan=plan, valid=outputs["valid"],
                             thresholds=thresholds, log_history=result.log_history)
    for finding in diagnosis.findings:
        logger.info("after training: %s", finding.render())
    return diagnosis
