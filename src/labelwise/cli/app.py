"""The ``labelwise`` command: a thin shell over the library verbs.

A user mistake prints one red line with the fix and exits 2; an internal fault exits 1
(``--debug`` shows its traceback). Heavy modules are imported inside the commands.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from labelwise.errors import ConfigError, LabelwiseError, MissingDependencyError, PreflightError
from labelwise.outputs.names import STUDY_DB, TRIALS, TUNE_MARKER, not_an_output_dir
from labelwise.cli.render import print_findings, print_inspection, print_plan, thresholds_line

app = typer.Typer(
    name="labelwise",
    help="Fine-tune and tune transformer text classifiers without label mistakes.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
STATE: dict[str, Any] = {"debug": False}

TaskOpt = Annotated[str, typer.Option("--task", help="auto | binary | multiclass | "
                                      "multilabel | regression")]
FormatOpt = Annotated[str, typer.Option("--format", help="text | json")]


def _console(stderr: bool = False, *, loud: bool = False) -> Any:
    import os

    from rich.console import Console

    # under torchrun only process 0 speaks: the others train the same run in silence
    quiet = not loud and os.environ.get("RANK", "0") not in ("", "0")
    return Console(stderr=stderr, highlight=False, soft_wrap=True, quiet=quiet)


def _split_list(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    out: list[str] = []
    for value in values:
        out.extend(part.strip() for part in value.split(",") if part.strip())
    return out


def _fail(err: LabelwiseError) -> None:
    from rich.markup import escape

    console = _console(stderr=True)
    code = f"{err.code} " if err.code else ""
    console.print(f"[bold red]error:[/] {code}{escape(err.render('cli'))}", markup=True)
    raise typer.Exit(2)


@contextlib.contextmanager
def json_errors(fmt: str) -> Iterator[None]:
    """With ``--format json``, a user mistake is JSON on stdout too (``ok: false`` and the
    error as a finding), then the red line on stderr and exit 2."""
    try:
        yield
    except LabelwiseError as err:
        if fmt == "json":
            findings = getattr(err, "findings", None) or [err.to_finding()]
            sys.stdout.write(json.dumps({"ok": False, "findings": [
                f.to_dict() for f in findings]}, indent=2, default=str) + "\n")
        raise


EXTRAS = {  # what each extra brings that a command imports
    "train": ("torch", "transformers", "accelerate", "safetensors", "plotly"),
    "tune": ("torch", "transformers", "accelerate", "safetensors", "optuna", "filelock"),
}


def need_extra(extra: str, command: str) -> None:
    """Refuse a command whose extra is not installed, naming the pip line (exit 2)."""
    from labelwise.errors import require

    require(*EXTRAS[extra], what=f"labelwise {command} needs the '{extra}' extra, which is "
            "not installed", extra=extra)


def require_module(module: str, command: str, extra: str) -> None:
    from labelwise.errors import require

    require(module, what=f"labelwise {command} needs {module} (the '{extra}' extra), which "
            "is not installed", extra=extra)


def run_safely(func: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a command body: user mistakes exit 2 without a traceback, faults exit 1."""
    try:
        return func(*args, **kwargs)
    except typer.Exit:
        raise
    except LabelwiseError as err:
        _fail(err)
    except KeyboardInterrupt:
        _console(stderr=True).print("[yellow]interrupted[/]")
        raise typer.Exit(130) from None
    except Exception as exc:  # an internal fault: say so, keep the traceback for --debug
        if STATE["debug"]:
            raise
        from rich.markup import escape

        _console(stderr=True, loud=True).print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {escape(str(exc))} "
            "(run with --debug for the traceback, and please report it)")
        raise typer.Exit(1) from None


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    STATE["debug"] = debug


@app.command()
def inspect(
    train: Annotated[str, typer.Argument(help="Training file (CSV, TSV, JSON, JSONL, Parquet).")],
    valid: Annotated[str | None, typer.Option("--valid", help="Validation file.")] = None,
    test: Annotated[str | None, typer.Option("--test", help="Test file.")] = None,
    text_column: Annotated[str, typer.Option("--text-column")] = "text",
    text_pair_column: Annotated[str | None, typer.Option("--text-pair-column")] = None,
    label_column: Annotated[list[str] | None, typer.Option(
        "--label-column", help="Label column; repeat (or comma-separate) for several.")] = None,
    task: TaskOpt = "auto",
    label_sep: Annotated[str | None, typer.Option("--label-sep",
                         help="Separator of delimited multilabel strings.")] = None,
    classes: Annotated[str | None, typer.Option("--classes", help="Class order: A,B,C.")] = None,
    positive: Annotated[str | None, typer.Option("--positive",
                        help="Positive class of a binary task.")] = None,
    valid_size: Annotated[float, typer.Option("--valid-size")] = 0.1,
    seed: Annotated[int, typer.Option("--seed")] = 42,
    fmt: FormatOpt = "text",
    exclude_rows: Annotated[str | None, typer.Option(
        "--exclude-rows", help="CSV of rows to leave out (a 'row' column).")] = None,
    label_errors: Annotated[str | None, typer.Option(
        "--label-errors",
        help="Also find wrong labels with cleanlab: fast (frozen-encoder embeddings and a "
             "linear model) or thorough (k short fine-tunes, averaged with fast). Loads a "
             "model.")
    ] = None,
    label_errors_out: Annotated[str | None, typer.Option(
        "--label-errors-out", help="Write the suspect rows, with their text, to this CSV.")
    ] = None,
    model: Annotated[str | None, typer.Option(
        "--model", help="Encoder for --label-errors (default: the packaged MiniLM).")] = None,
    folds: Annotated[int, typer.Option("--folds", help="Folds for --label-errors.")] = 5,
    config: Annotated[str | None, typer.Option(
        "--config", "-c", help="Run config whose model and settings --label-errors thorough "
                               "trains with.")] = None,
) -> None:
    """Infer the task and label schema, and audit every label problem. Loads no model
    unless --label-errors is given."""

    def body() -> None:
        from labelwise.data.inspection import inspect_data

        _check_format(fmt)
        with json_errors(fmt):
            result = inspect_data(
                train=train, valid=valid, test=test, text_column=text_column,
                text_pair_column=text_pair_column,
                label_columns=_split_list(label_column) or ["label"], task=task,
                classes=classes.split(",") if classes else None, label_sep=label_sep,
                positive=positive, valid_size=valid_size, seed=seed,
                exclude_rows=exclude_rows)
        found = None
        if label_errors is not None and result.data is not None:
            with json_errors(fmt):
                found = _label_errors(result.data, label_errors, model=model, folds=folds,
                                      seed=seed, config=config, out=label_errors_out,
                                      quiet=fmt == "json")
        if fmt == "json":
            payload = result.to_dict()
            if found is not None:
                payload["findings"] += [f.to_dict() for f in found.findings]
                payload.update({k: v for k, v in found.to_dict().items() if k != "findings"})
                payload["label_errors_method"] = payload.pop("method")
            sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
        else:
            print_inspection(result, _console())
            if found is not None:
                from labelwise.cli.render import print_label_errors

                print_label_errors(found, _console(), out=label_errors_out)
        raise typer.Exit(0 if result.ok else 2)

    run_safely(body)


def _label_errors(data: Any, method: str, *, model: str | None, folds: int, seed: int,
                  config: str | None, out: str | None, quiet: bool) -> Any:
    """``inspect --label-errors``: cleanlab on out-of-fold outputs, the CSV for review."""
    from labelwise.errors import ConfigError

    if method not in ("fast", "thorough"):
        raise ConfigError(f"unknown --label-errors method {method!r}",
                          fix="pass --label-errors fast or --label-errors thorough (after the "
                          "TRAIN argument)", code="LW142")
    run = None
    if config is not None:
        from labelwise.plan.config import load_config

        run = load_config(config)
    elif method == "thorough":
        raise ConfigError("--label-errors thorough trains with a run config and none was "
                          "given", fix="pass --config run.yaml", code="LW142")
    from labelwise.training.label_errors import find_label_errors

    found = find_label_errors(data=data, config=run, method=method, model=model, folds=folds,
                              seed=seed, progress=not quiet)
    if out:
        found.write_csv(out)
    return found


ConfigOpt = Annotated[str | None, typer.Option("--config", "-c",
                                               help="Run config (YAML or TOML).")]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", help="Override a config key: --set train.learning_rate=3e-5 (repeatable).")]
TrainOpt = Annotated[str | None, typer.Option("--train", help="Training file (data.train).")]
ValidOpt = Annotated[str | None, typer.Option("--valid", help="Validation file.")]
TestOpt = Annotated[str | None, typer.Option("--test", help="Test file.")]
LabelColOpt = Annotated[list[str] | None, typer.Option("--label-column",
                                                       help="Label column(s).")]
TextColOpt = Annotated[str | None, typer.Option("--text-column")]
TaskFlag = Annotated[str | None, typer.Option("--task")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="model.name_or_path.")]
OutOpt = Annotated[str | None, typer.Option("--output-dir", "-o", help="output_dir.")]


def build_config(config: str | None, sets: list[str] | None, *, train: str | None = None,
                 valid: str | None = None, test: str | None = None,
                 label_column: list[str] | None = None, text_column: str | None = None,
                 task: str | None = None, model: str | None = None,
                 output_dir: str | None = None, extra: list[str] | None = None) -> Any:
    """A :class:`RunConfig` from a file plus flags (flags override the file)."""
    from labelwise.plan.config import load_config

    overrides = list(extra or [])
    for key, value in (("data.train", train), ("data.valid", valid), ("data.test", test),
                       ("data.text_column", text_column), ("data.task", task),
                       ("model.name_or_path", model), ("output_dir", output_dir)):
        if value is not None:
            overrides.append(f"{key}={json.dumps(value)}")
    if label_column:
        overrides.append(f"data.label_columns={json.dumps(_split_list(label_column))}")
    overrides.extend(sets or [])
    return load_config(config, overrides=overrides, base=None if config else {})


def print_preflight_error(err: Any) -> None:
    console = _console(stderr=True)
    n_errors = len([f for f in err.findings if f.level == "error"])
    console.print(f"[bold red]preflight failed:[/] {n_errors} error(s); nothing was loaded "
                  "or written")
    print_findings(err.findings, console)


@app.command()
def check(
    config: ConfigOpt = None,
    sets: SetOpt = None,
    train: TrainOpt = None,
    valid: ValidOpt = None,
    test: TestOpt = None,
    label_column: LabelColOpt = None,
    text_column: TextColOpt = None,
    task: TaskFlag = None,
    model: ModelOpt = None,
    output_dir: OutOpt = None,
    search: Annotated[bool | None, typer.Option(
        "--search/--no-search", help="Check the search too (default: when the config has "
        "a search section).")] = None,
    fmt: FormatOpt = "text",
) -> None:
    """Run every check a training run or a search would run, without starting it."""

    def body() -> None:
        from labelwise.plan.preflight import preflight

        _check_format(fmt)
        with json_errors(fmt):
            cfg = build_config(config, sets, train=train, valid=valid, test=test,
                               label_column=label_column, text_column=text_column, task=task,
                               model=model, output_dir=output_dir)
        do_search = cfg.search is not None if search is None else search
        out_findings = _output_dir_findings(cfg.output_dir, inside=do_search)
        try:
            plan = preflight(cfg, source=config, search=do_search)
            if out_findings:
                raise PreflightError([*plan.findings, *out_findings])
        except PreflightError as err:
            if out_findings and not any(f in err.findings for f in out_findings):
                err = PreflightError([*err.findings, *out_findings])
            if fmt == "json":
                sys.stdout.write(json.dumps({"ok": False, "findings": [
                    f.to_dict() for f in err.findings]}, indent=2, default=str) + "\n")
            else:
                print_preflight_error(err)
            raise typer.Exit(2) from None
        if fmt == "json":
            out = {"ok": True, "task": plan.schema.task.value,
                   "num_labels": plan.contract.num_labels,
                   "classes": list(plan.schema.classes),
                   "fingerprint": plan.schema.fingerprint,
                   "findings": [f.to_dict() for f in plan.findings], **plan.to_dict()}
            sys.stdout.write(json.dumps(out, indent=2, default=str) + "\n")
        else:
            print_plan(plan, _console())
        raise typer.Exit(0)

    run_safely(body)


def _output_dir_findings(output_dir: str | None, *, inside: bool) -> list[Any]:
    """The output dir's problems (a file, under a file, read-only, in use) as findings."""
    from labelwise.errors import OutputError
    from labelwise.outputs.safety import check_output_dir, lock_path

    if not output_dir:
        return []
    try:
        check_output_dir(output_dir, inside=inside)
        if lock_path(Path(output_dir)).exists():
            from labelwise.outputs.safety import hold_output

            with hold_output(Path(output_dir), command="labelwise check"):
                pass
    except OutputError as err:
        return [err.to_finding()]
    return []


def quiet_libraries() -> None:
    """Presentation belongs to the CLI: silence third-party load reports and bars."""
    import logging
    import os

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # the command that needs it says which extra to install
        hf_logging = None
    if hf_logging is not None:
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    logging.getLogger("accelerate").setLevel(logging.ERROR)
    try:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
    except ImportError:
        pass


def show_labelwise_logs(console: Any) -> None:
    import logging

    from rich.logging import RichHandler

    logger = logging.getLogger("labelwise")
    if not any(isinstance(h, RichHandler) for h in logger.handlers):
        handler = RichHandler(console=console, show_path=False, show_time=False,
                              show_level=False, markup=False)
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def run_preflighted(console: Any, call: Any, *, verbose: bool = False) -> Any:
    """Run a verb that starts with preflight: logs to the console, a failed preflight
    prints its findings and exits 2; third-party noise off unless ``verbose``."""
    from labelwise.errors import PreflightError

    show_labelwise_logs(console)
    if not verbose:
        quiet_libraries()
    try:
        return call()
    except PreflightError as err:
        print_preflight_error(err)
        raise typer.Exit(2) from None


def print_metrics(metrics: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    splits = list(metrics)
    names: list[str] = []
    for split in splits:
        names += [k for k, v in metrics[split].items()
                  if isinstance(v, (int, float)) and k not in names and k != "threshold"]
    table = Table(title="Metrics", title_justify="left")
    table.add_column("metric")
    for split in splits:
        table.add_column(split, justify="right")
    for name in names:
        table.add_row(name, *(f"{metrics[s][name]:.4f}" if isinstance(metrics[s].get(name),
                                                                      (int, float)) else "-"
                              for s in splits))
    console.print(table)


def print_after_training(findings: Any, console: Any, *, title: str = "After training"
                         ) -> None:
    """The findings on what the trained model cannot do (``no findings`` when none)."""
    from labelwise.cli.render import print_findings

    console.print(f"\n[bold]{title}[/] (judged on validation)")
    print_findings(findings, console)


ReportOpt = Annotated[bool, typer.Option("--report/--no-report",
                                          help="Write OUTPUT/report.html at the end.")]
VerboseOpt = Annotated[bool, typer.Option(
    "--verbose", help="Let Transformers', Optuna's and Ray's own bars, banners and INFO "
    "lines through.")]


def report_after_run(output_dir: Any, console: Any) -> None:
    """Write the run's HTML report; a failure is a warning, never a failed run."""
    import logging

    from labelwise.errors import OutputError

    try:
        from labelwise.report.html import write_report

        path = write_report(output_dir)
    except OutputError:
        raise  # a full disk or an unwritable dir: the run's outputs are not all there
    except Exception as exc:  # noqa: BLE001 - the run succeeded: keep its exit code
        logging.getLogger("labelwise").warning("the report was not written: %s: %s (retry "
                                               "with: labelwise --debug report %s)",
                                               type(exc).__name__, exc, output_dir)
        return
    console.print(f"report: {path}")


@app.command()
def train(
    config: ConfigOpt = None,
    sets: SetOpt = None,
    train_file: TrainOpt = None,
    valid: ValidOpt = None,
    test: TestOpt = None,
    label_column: LabelColOpt = None,
    text_column: TextColOpt = None,
    task: TaskFlag = None,
    model: ModelOpt = None,
    output_dir: OutOpt = None,
    overwrite: Annotated[bool, typer.Option("--overwrite",
                         help="Replace a non-empty output directory.")] = False,
    resume: Annotated[bool, typer.Option("--resume",
                      help="Continue an interrupted run from its last checkpoint.")] = False,
    report: ReportOpt = True,
    verbose: VerboseOpt = False,
) -> None:
    """Preflight, then fine-tune, evaluate and save one classifier."""

    def body() -> None:
        need_extra("train", "train")
        console = _console()
        cfg = build_config(config, sets, train=train_file, valid=valid, test=test,
                           label_column=label_column, text_column=text_column, task=task,
                           model=model, output_dir=output_dir)
        from labelwise.cli.progress import RichProgress
        from labelwise.training.train import train as run_train

        result = run_preflighted(console, lambda: run_train(
            cfg, overwrite=overwrite, resume=resume, source=config,
            callbacks=[RichProgress(console)], progress=False, verbose=True),
            verbose=verbose)
        if not result.main_process:  # another torchrun process: process 0 reports
            return
        print_metrics(result.metrics, console)
        if result.thresholds is not None:
            schema = result.plan.schema
            names = ([str(schema.positive)] if len(result.thresholds.values) == 1
                     else schema.label_names)
            console.print(thresholds_line(result.thresholds, names), highlight=False)
        print_after_training(result.diagnosis.findings, console)
        s = result.stats
        ran = s.get("steps_this_run", s["steps"])
        resumed = (f", resumed at step {s['resumed_from_step']} of {s['steps']}"
                   if s.get("resumed_from_step") else "")
        console.print(f"trained {ran} steps in {s['train_seconds']:.1f} s "
                      f"({s['samples_per_second']:.1f} samples/s, {s['pad_share']:.1%} "
                      f"padding{resumed})")
        console.print(f"[green]saved[/] {result.output_dir}")
        if report:
            report_after_run(result.output_dir, console)

    run_safely(body)


@app.command()
def tune(
    config: ConfigOpt = None,
    sets: SetOpt = None,
    train_file: TrainOpt = None,
    valid: ValidOpt = None,
    test: TestOpt = None,
    label_column: LabelColOpt = None,
    text_column: TextColOpt = None,
    task: TaskFlag = None,
    model: ModelOpt = None,
    output_dir: OutOpt = None,
    n_trials: Annotated[int | None, typer.Option("--n-trials", help="Trials in all.")] = None,
    timeout: Annotated[float | None, typer.Option(
        "--timeout", help="Seconds: the search's budget (a running trial stops at it); "
        "unless the config sets them, it decides each trial's epochs and the trial count.")
    ] = None,
    storage: Annotated[str | None, typer.Option("--storage", help="Optuna storage URL.")] = None,
    study: Annotated[str | None, typer.Option("--study", help="Study name.")] = None,
    workers: Annotated[int | None, typer.Option("--workers",
                       help="Worker processes on this machine.")] = None,
    backend: Annotated[str | None, typer.Option(
        "--backend", help="optuna (default) or ray.")] = None,
    ray_address: Annotated[str | None, typer.Option(
        "--ray-address", help="Ray cluster to run on: auto or HOST:PORT.")] = None,
    join: Annotated[bool, typer.Option(
        "--join", help="Add this machine's trials to the study at --storage.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite")] = False,
    report: ReportOpt = True,
    verbose: VerboseOpt = False,
) -> None:
    """Search hyperparameters (Optuna or Ray Tune); the best model lands in OUTPUT/best/."""

    def body() -> None:
        need_extra("tune", "tune")
        console = _console()
        cfg = build_config(config, sets, train=train_file, valid=valid, test=test,
                           label_column=label_column, text_column=text_column, task=task,
                           model=model, output_dir=output_dir)
        from labelwise.tuning import tune as run_tune

        result = run_preflighted(console, lambda: run_tune(
            cfg, n_trials=n_trials, timeout=timeout, storage=storage, study=study,
            workers=workers, backend=backend, ray_address=ray_address, join=join,
            overwrite=overwrite, source=config, progress=False, verbose=verbose),
            verbose=verbose)
        print_search(result, console)
        if join:
            console.print("joined: the machine that started the study writes best/ and "
                          "the report")
        elif report:
            report_after_run(result.output_dir, console)

    run_safely(body)


def print_search(result: Any, console: Any) -> None:
    from rich.table import Table

    metric, direction = result.objective
    done = [t for t in result.trials if t.value is not None]
    ranked = sorted(done, key=lambda t: t.value, reverse=direction == "maximize")
    table = Table(title=f"Trials (objective: {metric}, {direction})", title_justify="left")
    for col in ("trial", "state", metric, "params", "seconds", "reason", "after training"):
        table.add_column(col)
    shown = ranked[:10] + [t for t in result.trials if t.value is None][:5]
    for t in shown:
        params = ", ".join(f"{k.split('.')[-1]}={v:.3g}" if isinstance(v, float) else
                           f"{k.split('.')[-1]}={v}" for k, v in t.params.items())
        table.add_row(str(t.number), t.state, f"{t.value:.4f}" if t.value is not None else "-",
                      params, f"{t.duration_s:.1f}" if t.duration_s else "-", t.reason[:60],
                      " ".join(dict.fromkeys(f["code"] for f in t.findings)))
    console.print(table)
    counts = ", ".join(f"{n} {state.lower()}" for state, n in sorted(result.counts().items()))
    console.print(f"{len(result.trials)} trials: {counts}")
    if result.best_dir is not None:
        from rich.markup import escape

        from labelwise.scoring.diagnosis import Diagnosis, brief

        best = next((t for t in result.trials if t.number == result.best_trial), None)
        found = list(best.findings) if best is not None else []
        note = f" — [yellow]{escape(brief(found))}[/]" if found else ""
        console.print(f"[green]best[/] trial {result.best_trial}: {metric}="
                      f"{result.best_value:.4f}{note} -> {result.best_dir}")
        print_after_training(Diagnosis.from_dict({"findings": found}).findings, console,
                             title=f"After training (best trial {result.best_trial})")
    console.print(f"trials table: {result.output_dir / TRIALS}")


@app.command()
def dashboard(
    output: Annotated[str, typer.Argument(help="A labelwise tune output directory.")],
    storage: Annotated[str | None, typer.Option(
        "--storage", help="The study's storage URL (default: the one tune used).")] = None,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8080,
) -> None:
    """Open optuna-dashboard on a search's study (extra: pip install 'labelwise[dashboard]')."""

    def body() -> None:
        marker = Path(output) / TUNE_MARKER
        if not marker.exists():
            raise not_an_output_dir(output, search=True)
        info = json.loads(marker.read_text())
        if info.get("backend") == "ray":
            raise ConfigError("a Ray search keeps no Optuna study to show",
                              where=f"file {marker}", fix="read OUTPUT/trials.csv and "
                              "OUTPUT/report.html, or point Ray's own dashboard at the cluster",
                              code="LW336")
        url = storage or info.get("storage") or \
            f"sqlite:///{(Path(output) / STUDY_DB).resolve()}"
        if "***" in url:
            raise ConfigError("the study's storage URL was saved without its password",
                              where=f"file {marker}", fix="pass it again: labelwise dashboard "
                              f"{output} --storage URL", code="LW335")
        try:
            from optuna_dashboard import run_server
        except ImportError:
            raise MissingDependencyError("the dashboard needs optuna-dashboard",
                                         fix="pip install 'labelwise[dashboard]'",
                                         code="LW401") from None
        from labelwise.tuning._storage import display_url, make_storage

        _console().print(f"optuna-dashboard on http://{host}:{port} (storage "
                         f"{display_url(url)})")
        run_server(make_storage(url), host=host, port=port)

    run_safely(body)


@app.command("report")
def report_command(
    output: Annotated[str, typer.Argument(help="A labelwise train or tune output directory.")],
    path: Annotated[str | None, typer.Option("--output", "-o", help="Where to write the "
                                             "HTML (default OUTPUT/report.html).")] = None,
) -> None:
    """Write a self-contained HTML report of a train or tune run (opens offline)."""

    def body() -> None:
        require_module("plotly", "report", "train")
        quiet_libraries()
        from labelwise.report.html import write_report

        written = write_report(_path(output), path=_path(path) if path else None)
        _console().print(f"[green]wrote[/] {written}")

    run_safely(body)


@app.command()
def predict(
    model_dir: Annotated[str, typer.Argument(help="A model dir from labelwise train/tune.")],
    input_file: Annotated[str, typer.Argument(help="CSV, TSV, JSONL, JSON or Parquet file.")],
    output: Annotated[str, typer.Option("--output", "-o", help="Where to write predictions "
                                        "(.csv, .jsonl or .parquet).")] = "predictions.csv",
    text_column: TextColOpt = None,
    threshold: Annotated[list[float] | None, typer.Option(
        "--threshold", help="Override thresholds: one value for all labels, or one per "
        "label (repeat).")] = None,
    batch_size: Annotated[int | None, typer.Option(
        "--batch-size", help="Rows per forward pass (default: 32 on the CPU, 16 for an ONNX "
        "export, 64 on a GPU).",
        show_default=False)] = None,
    chunk_rows: Annotated[int, typer.Option(
        "--chunk-rows", help="Rows read, predicted and written at a time (memory grows "
        "with this, not with the file).")] = 4096,
    device: Annotated[str, typer.Option(
        "--device", help="auto (CUDA, else MPS, else CPU), cpu, mps, cuda or cuda:N.")] = "auto",
    on_invalid: Annotated[str, typer.Option(
        "--on-invalid", help="raise (default): rows with no text are an error; skip: they "
        "get an empty label.")] = "raise",
    resume: Annotated[bool | None, typer.Option(
        "--resume/--restart", help="An interrupted run of the same prediction is continued "
        "by default (else started over); --resume: continue it or fail; --restart: always "
        "start over.", show_default=False)] = None,
    runtime: Annotated[str, typer.Option(
        "--runtime", help="auto (onnx for a dir labelwise export wrote, else torch), torch "
        "or onnx.")] = "auto",
) -> None:
    """Predict labels for a file of texts, in chunks; writes the input rows plus label and
    scores. The output appears only when complete; an interrupted run continues."""

    def body() -> None:
        need_extra("train", "predict")
        quiet_libraries()
        from labelwise.training.stream import predict_file

        thr = None if not threshold else threshold[0] if len(threshold) == 1 else threshold
        with _rows_bar() as on_progress:
            done = predict_file(model_dir=model_dir, input=input_file, output=output,
                                text_column=text_column, thresholds=thr,
                                batch_size=batch_size, chunk_rows=chunk_rows,
                                on_invalid=on_invalid, device=device, runtime=runtime,
                                resume=resume,
                                on_progress=on_progress)
        notes = [f"{done.skipped} skipped"] if done.skipped else []
        if done.resumed_rows:
            notes.append(f"continued after row {done.resumed_rows}")
        note = f" ({', '.join(notes)})" if notes else ""
        _console().print(f"[green]wrote[/] {done.rows} predictions to {output}{note}")

    run_safely(body)


@contextlib.contextmanager
def _rows_bar() -> Iterator[Any]:
    """A rich bar of rows on stderr, fed as ``on_progress(done, total)``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from rich.progress import TimeRemainingColumn

    with Progress(TextColumn("predicting"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=_console(stderr=True),
                  transient=True) as bar:
        task = bar.add_task("rows", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@app.command("export")
def export_command(
    model_dir: Annotated[str, typer.Argument(help="A model dir from labelwise train/tune.")],
    fmt: Annotated[str, typer.Option("--format", help="onnx.")] = "onnx",
    quantize: Annotated[str | None, typer.Option(
        "--quantize", help="int8 (dynamic quantization); leave out for fp32.")] = None,
    output: Annotated[str | None, typer.Option(
        "--output", "-o", help="The exported dir (default MODEL_DIR-onnx or "
        "MODEL_DIR-onnx-int8 beside MODEL_DIR).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite",
                         help="Replace an existing export.")] = False,
) -> None:
    """Export a model dir to ONNX for fast CPU serving (predict it with --runtime onnx)."""

    def body() -> None:
        need_extra("train", "export")
        quiet_libraries()
        from labelwise.training.export import export

        done = export(model_dir=model_dir, format=fmt, quantize=quantize,
                      output_dir=_path(output) if output else None, overwrite=overwrite)
        kind = f"{done.format} {done.quantize or 'fp32'}"
        _console().print(f"[green]exported[/] {kind} ({done.size_bytes / 2**20:.1f} MiB) to "
                         f"{done.output_dir}")

    run_safely(body)


def _check_format(fmt: str) -> None:
    if fmt not in ("text", "json"):
        raise ConfigError(f"unknown --format {fmt!r}", fix="pass --format text or --format json")


def _path(value: str) -> Path:
    return Path(value).expanduser()


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
