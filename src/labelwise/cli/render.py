"""Rich rendering of results for the CLI. The library never prints; the CLI calls these."""

from __future__ import annotations

from typing import Any

from labelwise.findings import Finding

__all__ = ["print_inspection", "print_findings", "finding_line", "thresholds_line"]

_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
_SPLIT_TITLES = {"train": "train", "valid": "validation", "test": "test"}
MAX_CLASS_ROWS = 60


def finding_line(finding: Finding) -> str:
    from rich.markup import escape

    style = _STYLE[finding.level]
    text = f"[{style}]{finding.level:<7}[/] [bold]{finding.code}[/] {escape(finding.message)}"
    where = str(finding.where)
    if where:
        text += f"\n          [dim]where:[/] {escape(where)}"
    if finding.fix:
        text += f"\n          [dim]fix:[/]   {escape(finding.fix)}"
    return text


def print_findings(findings: Any, console: Any) -> None:
    if not findings:
        console.print("[green]no findings[/]")
        return
    for finding in findings:
        console.print(finding_line(finding))
    n_err = len(findings.errors)
    n_warn = len(findings.warnings)
    n_info = len(findings) - n_err - n_warn
    colour = "red" if n_err else "green"
    console.print(f"[{colour}]{n_err} error(s)[/], {n_warn} warning(s), {n_info} info")


def print_inspection(result: Any, console: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    schema = result.schema
    console.print("[bold]Sources[/]")
    for split, source in result.sources.items():
        size = result.sizes.get(split)
        console.print(f"  {_SPLIT_TITLES.get(split, split):<10} {escape(source)}  ({size} rows)")
    carve = result.data.carve if result.data is not None else None
    if carve is not None:
        console.print(f"  validation carved from train: {carve.n_valid} rows, {carve.method}, "
                      f"seed {carve.seed}")
    if schema is None:
        console.print("\n[bold red]No label schema[/]: the labels cannot make one (see below).")
    else:
        console.print("\n[bold]Label schema[/]")
        console.print(f"  task         [bold]{schema.task.value}[/]  ({escape(schema.evidence)})")
        console.print(f"  num_labels   {schema.num_labels}")
        console.print(f"  columns      {', '.join(schema.columns)}   format: "
                      f"{schema.label_format}")
        if schema.task.value == "regression":
            console.print(f"  targets      {', '.join(schema.targets)}")
        else:
            shown = ", ".join(repr(c) for c in schema.classes[:12])
            more = f", … ({len(schema.classes)} in all)" if len(schema.classes) > 12 else ""
            console.print(f"  classes      {escape(shown + more)}")
        if schema.positive is not None:
            console.print(f"  positive     {schema.positive!r}")
        console.print(f"  fingerprint  {schema.fingerprint}")
        dist = result.distribution
        splits = list(dist)
        table = Table(title="Label distribution", title_justify="left", show_lines=False)
        if schema.task.value == "regression":
            table.add_column("target")
            for split in splits:
                table.add_column(f"{_SPLIT_TITLES[split]} mean±sd (min–max)", justify="right")
            for name in schema.targets:
                cells = []
                for split in splits:
                    s = dist[split][name]
                    cells.append(f"{s['mean']:.3f}±{s['sd']:.3f} ({s['min']}–{s['max']})")
                table.add_row(name, *cells)
        else:
            table.add_column("class")
            for split in splits:
                table.add_column(_SPLIT_TITLES[split], justify="right")
            names = [str(c) for c in schema.classes]
            if any("(unfit)" in dist[s] for s in splits):
                names.append("(unfit)")
            for name in names[:MAX_CLASS_ROWS]:
                table.add_row(escape(name), *(str(dist[s].get(name, 0)) for s in splits))
            if len(names) > MAX_CLASS_ROWS:
                table.add_row(f"… {len(names) - MAX_CLASS_ROWS} more", *("" for _ in splits))
        console.print()
        console.print(table)
    console.print("\n[bold]Findings[/]")
    print_findings(result.findings, console)


def print_label_errors(found: Any, console: Any, *, out: str | None = None,
                       show: int = 10) -> None:
    """``inspect --label-errors``: the suspects table (lowest label quality first), then the
    findings."""
    from rich.markup import escape
    from rich.table import Table

    console.print(f"\n[bold]Suspect labels[/] ({found.method}, {found.folds} folds, "
                  f"{found.rows} rows, {found.seconds:.0f} s): {len(found.suspects)} flagged")
    if found.suspects:
        table = Table(show_lines=False)
        for col, just in (("row", "right"), ("given", "left"), ("suggested", "left"),
                          ("score", "right"), ("text", "left")):
            table.add_column(col, justify=just)
        for s in found.suspects[:show]:
            text = s.text if len(s.text) <= 60 else s.text[:59] + "…"
            table.add_row(str(s.row), escape(str(s.given)), escape(str(s.suggested)),
                          f"{s.score:.3f}", escape(text))
        console.print(table)
        if len(found.suspects) > show:
            console.print(f"  … {len(found.suspects) - show} more"
                          + (f" in {escape(out)}" if out else " (--label-errors-out FILE.csv "
                             "writes them all)"))
        elif out:
            console.print(f"  written to {escape(out)}")
    print_findings(found.findings, console)


def print_plan(plan: Any, console: Any) -> None:
    """The resolved plan: each decision once, then the findings."""
    from rich.markup import escape

    console.print("[bold]Plan[/]")
    for d in plan.decisions:
        console.print(f"  [bold]{escape(d.key)}[/]={escape(str(d.value))}  "
                      f"[dim]({escape(d.reason)})[/]")
    console.print(f"  schema fingerprint {plan.schema.fingerprint}")
    console.print("\n[bold]Findings[/]")
    print_findings(plan.findings, console)
    console.print("[green]preflight passed[/]: nothing was loaded or written")


def thresholds_line(thresholds: Any, names: Any) -> str:
    """``thresholds (tuned on validation): joy 0.31, grief 0.50 (default), ...``: one
    threshold per label name, three decimals, the labels that kept the default marked."""
    parts = [f"{name} {value:.3f}" + ("" if method.startswith("tuned") else " (default)")
             for name, value, method in zip(names, thresholds.values, thresholds.methods,
                                            strict=False)]
    kept = sum(1 for m in thresholds.methods if not m.startswith("tuned"))
    note = (f" — {kept} kept the default: too few positive or negative validation rows to tune"
            if kept else "")
    return f"thresholds (tuned on validation): {', '.join(parts)}{note}"
