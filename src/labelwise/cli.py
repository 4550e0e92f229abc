"""The ``labelwise`` command: a thin shell over the library verbs.

A user mistake prints one red line with the fix and exits 2; an internal fault exits 1
(``--debug`` shows its traceback). Heavy modules are imported inside the commands.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from labelwise.errors import LabelwiseError

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


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _split_list(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    out: list[str] = []
    for value in values:
        out.extend(part.strip() for part in value.split(",") if part.strip())
    return out


def _fail(err: LabelwiseError) -> None:
    console = _console(stderr=True)
    code = f"{err.code} " if err.code else ""
    console.print(f"[bold red]error:[/] {code}{err.render()}", markup=True)
    raise typer.Exit(2)


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
        _console(stderr=True).print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {exc} "
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
) -> None:
    """Infer the task and label schema, and audit every label problem. Loads no model."""

    def body() -> None:
        from labelwise.inspection import inspect_data
        from labelwise.render import print_inspection

        _check_format(fmt)
        result = inspect_data(
            train=train, valid=valid, test=test, text_column=text_column,
            text_pair_column=text_pair_column,
            label_columns=_split_list(label_column) or ["label"], task=task,
            classes=classes.split(",") if classes else None, label_sep=label_sep,
            positive=positive, valid_size=valid_size, seed=seed)
        if fmt == "json":
            sys.stdout.write(json.dumps(result.to_dict(), indent=2, default=str) + "\n")
        else:
            print_inspection(result, _console())
        raise typer.Exit(0 if result.ok else 2)

    run_safely(body)


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
    from labelwise.config import load_config

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
    from labelwise.render import print_findings

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
    search: Annotated[bool | None, typer.Option(
        "--search/--no-search", help="Check the search too (default: when the config has "
        "a search section).")] = None,
    fmt: FormatOpt = "text",
) -> None:
    """Run every check a training run or a search would run, without starting it."""

    def body() -> None:
        from labelwise.errors import PreflightError
        from labelwise.preflight import preflight
        from labelwise.render import print_plan

        _check_format(fmt)
        cfg = build_config(config, sets, train=train, valid=valid, test=test,
                           label_column=label_column, text_column=text_column, task=task,
                           model=model)
        do_search = cfg.search is not None if search is None else search
        try:
            plan = preflight(cfg, source=config, search=do_search)
        except PreflightError as err:
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


def _check_format(fmt: str) -> None:
    from labelwise.errors import ConfigError

    if fmt not in ("text", "json"):
        raise ConfigError(f"unknown --format {fmt!r}", fix="pass --format text or --format json")


def _path(value: str) -> Path:
    return Path(value).expanduser()


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
