"""The five shared datasets: a plain Trainer script against ``labelwise tune`` in a fixed budget.

    .venv/bin/python bench/bench_vs_plain.py [--only trec,emobank] [--parts plain,tune] \\
        [--budget 1800] [--finish-by 2026-11-24T01:30] [--rows N] [--tune-set KEY=VALUE] \\
        [--out bench/results/vs_plain.json] [--markdown BENCHMARKS.md]
    .venv/bin/python bench/bench_vs_plain.py --defaults [--only ...] [--budget 1800]
    .venv/bin/python bench/bench_vs_plain.py --render-only

Runs from the repository root, one process at a time (never two trainings at once):

1. the plain baseline for each dataset (sst2, ag_news, trec, go_emotions, emobank):
   ``.venv/bin/python bench/plain_dataset.py --dataset NAME`` — Transformers Trainer defaults
   (learning rate 5e-5, batch 8) for one epoch with length grouping, MiniLM, test metrics;
2. ``labelwise tune`` on the same model for each dataset, in the order trec, emobank,
   go_emotions, sst2, ag_news:
   ``.venv/bin/labelwise tune --config bench/configs/tune_NAME.yaml --overwrite --timeout T``.
   The whole command (preflight, trials, the best model's test evaluation, the report) has a
   wall-clock budget (``--budget``, default 30 minutes); ``T`` is the config's
   ``search.timeout``, which leaves room for the last running trial. The objective is the
   target metric on validation; test metrics are read from ``OUTPUT/best/metrics.json``.

``--defaults`` runs step 2 with ``bench/configs/defaults_NAME.yaml`` instead: only the data,
the objective and the budget, everything else labelwise's defaults (the trial length from
the budget and the measured speed, the space scaled to the model); its table, with the
raised targets, is a section of its own next to the tuned one.

``--finish-by`` (UTC, ISO time) shortens the budget of the tunes still to run when the
remaining time cannot hold them all at ``--budget``: each gets an equal share of what is left,
and its ``search.timeout`` shrinks by the same number of seconds; the cut is recorded.

The machine is shared: every run records the CPU time other processes took while it ran
(``other_cpu_share``: busy CPU time from /proc/stat minus the run's own, over wall time x
cores). ``--out`` is rewritten after every run, so partial results survive; ``--only`` re-runs
just those datasets and keeps the other entries. After each run the section between
``<!-- vs-plain:begin -->`` and ``<!-- vs-plain:end -->`` of ``--markdown`` is regenerated
from the JSON; ``--render-only`` does only that.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from bench_datasets import busy_cpu_seconds, children_cpu_seconds

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATASETS = ("sst2", "ag_news", "trec", "go_emotions", "emobank")
TUNE_ORDER = ("trec", "emobank", "go_emotions", "sst2", "ag_news")
BUDGET = 1800.0
# Tunes started before these times ran a labelwise without the head prior and the head
# learning rate, or without the search deadline that stops the running trial.
HEAD_SINCE = dt.datetime(2026, 11, 24, 2, 0, tzinfo=dt.UTC)
DEADLINE_SINCE = dt.datetime(2026, 11, 24, 2, 42, tzinfo=dt.UTC)
BEGIN, END = "<!-- vs-plain:begin -->", "<!-- vs-plain:end -->"
# (metric key in the test metrics, label in the table, target or None)
ROWS: dict[str, list[tuple[str, str, float | None]]] = {
    "sst2": [("accuracy", "accuracy", 0.89)],
    "ag_news": [("accuracy", "accuracy", 0.90), ("macro_f1", "macro-F1", None)],
    "trec": [("accuracy", "accuracy", 0.96), ("macro_f1", "macro-F1", 0.90)],
    "go_emotions": [("macro_f1", "macro-F1", 0.42), ("micro_f1", "micro-F1", None)],
    "emobank": [("pearson.V", "Pearson r V", 0.65), ("pearson.A", "Pearson r A", 0.40),
                ("pearson.D", "Pearson r D", 0.35), ("pearson", "Pearson r mean", None)],
}
# the targets for a run with defaults only (bench/configs/defaults_NAME.yaml)
RAISED: dict[str, dict[str, float]] = {
    "sst2": {"accuracy": 0.91}, "ag_news": {"accuracy": 0.92},
    "trec": {"accuracy": 0.96, "macro_f1": 0.92}, "go_emotions": {"macro_f1": 0.46},
    "emobank": {"pearson": 0.60},
}
DEFAULTS_BEGIN, DEFAULTS_END = "<!-- vs-defaults:begin -->", "<!-- vs-defaults:end -->"
OBJECTIVE = {"sst2": "accuracy", "ag_news": "accuracy", "trec": "accuracy",
              "go_emotions": "macro_f1", "emobank": "pearson (mean of V, A, D)"}


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    import torch
    import transformers

    return {"arch": platform.machine(), "cores": os.cpu_count(), "cpu": cpu_model(),
            "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__}


def timed(cmd: list[str], log: Path, timeout: float | None = None) -> dict[str, Any]:
    """Run ``cmd`` from the repository root; wall time, own CPU and other processes' share."""
    with log.open("w") as fh:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        busy, own = busy_cpu_seconds(), children_cpu_seconds()
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, check=False, cwd=ROOT, env=env, stdout=fh,
                                  stderr=subprocess.STDOUT, timeout=timeout)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            code = -9
        wall = time.perf_counter() - start
        own = children_cpu_seconds() - own
        other = max(0.0, busy_cpu_seconds() - busy - own)
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {code}:\n{log.read_text()[-3000:]}")
    return {"command": " ".join(cmd), "wall_seconds": round(wall, 1),
            "cpu_seconds": round(own, 1),
            "other_cpu_share": round(other / (wall * (os.cpu_count() or 1)), 3),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def run_plain(name: str, rows: int | None, log_dir: Path) -> dict[str, Any]:
    """The plain Trainer baseline of one dataset."""
    out = log_dir / f"plain_{name}.json"
    cmd = [rel(Path(sys.executable)) if Path(sys.executable).is_relative_to(ROOT)
           else sys.executable, rel(HERE / "plain_dataset.py"), "--dataset", name,
           "--out", str(out)]
    if rows:
        cmd += ["--rows", str(rows)]
    run = timed(cmd, log_dir / f"plain_{name}.log")
    # the output file is temporary: keep it out of the recorded command
    run["command"] = run["command"].replace(f" --out {out}", "")
    result = json.loads(out.read_text())
    print(f"plain {name}: {run['wall_seconds']:.0f} s, other processes "
          f"{run['other_cpu_share']:.0%} of the CPU, test {result['test']}", flush=True)
    return {**run, **{k: v for k, v in result.items() if k != "dataset"}}


def labelwise_exe() -> str:
    exe = Path(sys.executable).with_name("labelwise")
    return rel(exe) if exe.is_relative_to(ROOT) else str(exe)


def run_tune(name: str, budget: float, log_dir: Path, sets: list[str],
             kind: str = "tune") -> dict[str, Any]:
    """``labelwise tune`` on one dataset within ``budget`` seconds for the whole command,
    with the hand-tuned config (``kind="tune"``) or the one holding only data, objective and
    budget (``"defaults"``)."""
    config_path = HERE / "configs" / f"{kind}_{name}.yaml"
    config = yaml.safe_load(config_path.read_text())
    timeout = float(config["search"]["timeout"]) - max(0.0, BUDGET - budget)
    timeout = max(60.0, timeout)
    cmd = [labelwise_exe(), "tune", "--config", rel(config_path), "--overwrite",
           "--timeout", f"{timeout:g}"]
    for item in sets:
        cmd += ["--set", item]
    # The budget is not enforced by killing; a hung command is stopped at twice the budget.
    run = timed(cmd, log_dir / f"{kind}_{name}.log", timeout=2 * budget + 300)
    out_dir = Path(config["output_dir"])
    search = json.loads((out_dir / "search.json").read_text())
    metrics = json.loads((out_dir / "best" / "metrics.json").read_text())
    manifest = json.loads((out_dir / "best" / "labelwise.json").read_text())
    chosen = json.loads((out_dir / "tune.json").read_text()).get("budget")
    counts = search["counts"]
    result = {**run, "config_file": rel(config_path), "config": config,
               "budget_seconds": budget, "budget_cut": budget < BUDGET,
               "search_timeout": timeout,
               "within_budget": run["wall_seconds"] <= budget,
               "objective": search["objective"], "best_trial": search["best_trial"],
               "best_valid_value": search["best_value"], "best_params": search["best_params"],
               "trials": {"complete": counts.get("COMPLETE", 0),
                         "pruned": counts.get("PRUNED", 0), "failed": counts.get("FAIL", 0),
                         "all": sum(counts.values())},
               "search_stats": search["stats"], "output_dir": str(out_dir),
               "best_train": {k: manifest["plan"]["config"]["train"][k]
                             for k in ("epochs", "batch_size", "learning_rate", "warmup_ratio",
                                       "evals_per_epoch")},
               "thresholds": manifest.get("thresholds"),
               "trial_budget": chosen,  # what labelwise chose from the budget (defaults)
               "pruner": manifest["plan"]["config"].get("search", {}).get("pruner"),
               "test": flatten_test(metrics["test"])}
    print(f"{kind} {name}: {run['wall_seconds']:.0f} s of {budget:.0f}, trials "
          f"{result['trials']}, other processes {run['other_cpu_share']:.0%} of the CPU, "
          f"best {result['best_params']}, test {result['test']}", flush=True)
    return result


def flatten_test(test: dict[str, Any]) -> dict[str, Any]:
    """The headline test metrics of a labelwise ``metrics.json``."""
    keys = ("accuracy", "macro_f1", "micro_f1", "pearson", "mse")
    out = {k: test[k] for k in keys if isinstance(test.get(k), (int, float))}
    if "per_target" in test:
        out["pearson_per_target"] = {t: row["pearson"] for t, row in test["per_target"].items()}
    return out


def metric_value(test: dict[str, Any] | None, key: str) -> float | None:
    if not test:
        return None
    if key.startswith("pearson."):
        return (test.get("pearson_per_target") or {}).get(key.split(".", 1)[1])
    value = test.get(key)
    return float(value) if isinstance(value, (int, float)) else None


def fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def fmt_params(params: dict[str, Any]) -> str:
    def one(value: Any) -> str:
        if isinstance(value, float) and 0 < abs(value) < 0.01:
            return f"{value:.1e}"
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    return ", ".join(f"{k.split('.')[-1]} {one(v)}" for k, v in params.items())


def _older_runs(data: dict[str, Any]) -> list[str]:
    """A note on the tunes that ran an older labelwise (from when each started)."""
    started = {}
    for name in DATASETS:
        tune = data.get(name, {}).get("tune")
        if tune and tune.get("finished"):
            end = dt.datetime.fromisoformat(tune["finished"].replace("Z", "+00:00"))
            started[name] = end - dt.timedelta(seconds=tune["wall_seconds"])
    no_head = [n for n, t in started.items() if t < HEAD_SINCE]
    no_deadline = [n for n, t in started.items() if t < DEADLINE_SINCE]
    out = []
    if no_head:
        out.append(f"The tune{'s' * (len(no_head) > 1)} of {', '.join(no_head)} ran an older "
                   "labelwise, in which a new "
                   "head started at zero bias and learned at the encoder's rate.")
    if no_deadline:
        many = len(no_deadline) > 1
        out.append(f"The tune{'s' * many} of {', '.join(no_deadline)} let "
                   "the trial running at the search timeout finish, so "
                   f"{'their search timeouts leave' if many else 'its search timeout leaves'} "
                   "room for it.")
    return ["", " ".join(out)] if out else []


def metric_rows(data: dict[str, Any], theirs_side: str, ours_side: str,
                target_of: Any) -> list[str]:
    """``| dataset | metric | theirs | ours | target | met? |`` rows of every dataset's test
    metrics; ``target_of(name, key, table_target)`` gives each row's target or ``None``."""
    lines = []
    for name in DATASETS:
        entry = data.get(name, {})
        base, run = entry.get(theirs_side), entry.get(ours_side)
        for key, label, listed in ROWS[name]:
            target = target_of(name, key, listed)
            ours = metric_value(run and run.get("test"), key)
            met = ("–" if target is None or ours is None else
                   "yes" if ours >= target else "**no**")
            theirs = metric_value(base and base.get("test"), key)
            goal = "–" if target is None else f"≥ {target:.2f}"
            lines.append(f"| {name} | {label} | {fmt(theirs)} | {fmt(ours)} | {goal} | {met} |")
    return lines


def render(results: dict[str, Any]) -> str:
    """The markdown section, from the results JSON alone."""
    data = results.get("datasets", {})
    m = results.get("machine", {})
    budget = results.get("budget_seconds", BUDGET)
    given = sorted({round(e["tune"]["budget_seconds"] / 60) for e in data.values()
                    if e.get("tune")})
    budgets = (f"{given[0]} minutes a dataset" if len(given) == 1 else
               f"{' to '.join(str(g) for g in (given[0], given[-1]))} minutes a dataset "
               "(each in the runs table)")
    lines = [BEGIN, "", "## The five datasets: plain Trainer script vs labelwise tune", "",
             ("Command: `.venv/bin/python bench/bench_vs_plain.py` (raw results: "
              "`bench/results/vs_plain.json`; this section is generated from it with "
              "`--render-only`)."), "",
             (f"Machine: {m.get('arch', '?')}, {m.get('cores', '?')} CPU cores "
              f"({m.get('cpu', '?')}), no GPU, Python {m.get('python', '?')}, torch "
              f"{m.get('torch', '?')}, transformers {m.get('transformers', '?')}. Model: the "
              "packaged all-MiniLM-L6-v2 on both sides. All figures are on the **test** split, "
              "which chooses nothing."), "",
             ("- **plain**: `bench/plain_dataset.py`, the tutorial path (pandas → "
              "`datasets.Dataset.map(tokenizer)` → `AutoModelForSequenceClassification` → "
              "`Trainer`) with Trainer defaults (learning rate 5e-5, batch 8, linear decay) "
              "for 1 epoch, length grouping, dynamic padding, fp32. Multilabel predicts at a "
              "fixed 0.5 threshold; regression is a 3-output MSE head on V, A, D."),
             (f"- **labelwise tune**: `labelwise tune --config bench/configs/tune_NAME.yaml` "
              f"with a wall-clock budget of **{budgets} for the whole command** "
              "(preflight, trials, the best model's test evaluation and the report). The "
              "objective is the target metric on validation (sst2, ag_news, trec accuracy, "
              "sst2's decision threshold tuned for accuracy on validation; "
              "go_emotions macro-F1 with per-label thresholds tuned on validation; emobank "
              "the mean Pearson r of V, A, D); TPE sampler, median pruner, learning rate, "
              "batch size (16/32) and warmup (0/0.1) searched, and the new head's learning "
              "rate where the config's space has it; epochs fixed per dataset. Where the "
              "runs table says \"refit\" (`search.refit: true`), the best trial's params are "
              "trained once more on train + validation inside the same budget, and that model "
              "gives the test figures."),
             ("- The targets are those set for `labelwise tune` **within 30 minutes**; a tune "
              "that got less (runs table) may miss a target it would meet at 30 minutes. "
              "The machine was shared with other work during some runs (the "
              "\"other load\" column: CPU time other processes took, as a share of both "
              "cores), which slows both sides."), "",
             "| dataset | metric | plain | labelwise tune | target | met? |",
             "|---|---|---:|---:|---:|---|"]
    lines += metric_rows(data, "plain", "tune", lambda name, key, target: target)
    lines += ["", ("Runs (wall time of the whole command; other load = CPU share other "
               "processes used during it). \"budget cut\" marks a tune that got less than "
               f"{budget / 60:.0f} minutes because the whole benchmark had to end by a set "
               "time (`--finish-by`): each remaining tune then gets an equal share of the time "
               "left, and its `search.timeout` shrinks by as much. The search starts no trial "
               "after its timeout, and stops the trial still running at it (PRUNED) when the "
               "search has a completed trial; the rest of the budget covers "
               "start-up, the best model's test evaluation and the report. Other load "
               "changes wall times and how many trials fit, not what a given trial "
               "computes."), "",
              ("| dataset | plain: wall time, other load | tune: wall time / budget, other "
               "load | trials complete / pruned / failed | best params (valid objective) |"),
              "|---|---|---|---|---|"]
    for name in DATASETS:
        entry = data.get(name, {})
        plain, tune = entry.get("plain"), entry.get("tune")
        p = (f"{plain['wall_seconds'] / 60:.1f} min, {plain['other_cpu_share']:.0%}"
             if plain else "not run")
        if tune:
            t = tune["trials"]
            notes = [f"search timeout {tune['search_timeout'] / 60:.1f} min"]
            if tune.get("budget_cut"):
                notes.append("budget cut")
            if not tune.get("within_budget"):
                notes.append("**over budget**")
            if (tune["config"].get("search") or {}).get("refit"):
                notes.append("best params refit on train + valid")
            if tune.get("finished"):
                notes.append(f"finished {tune['finished'].replace('T', ' ')[:16]} UTC")
            tu = (f"{tune['wall_seconds'] / 60:.1f} / {tune['budget_seconds'] / 60:.0f} min "
                  f"({'; '.join(notes)}), {tune['other_cpu_share']:.0%}")
            trials = f"{t['complete']} / {t['pruned']} / {t['failed']}"
            epochs = tune.get("best_train", tune["config"]["train"])["epochs"]
            best = (f"{fmt_params(tune['best_params'])}; {epochs:g} "
                    f"epoch{'' if epochs == 1 else 's'} "
                    f"(valid {OBJECTIVE[name].split(' ')[0]} {fmt(tune['best_valid_value'])})")
        else:
            tu, trials, best = "not run", "–", "–"
        lines.append(f"| {name} | {p} | {tu} | {trials} | {best} |")
    lines += _older_runs(data)
    misses = []
    for name in DATASETS:
        tune = data.get(name, {}).get("tune")
        plain = data.get(name, {}).get("plain")
        for key, label, target in ROWS[name]:
            ours = metric_value(tune and tune.get("test"), key)
            if target is not None and ours is not None and ours < target:
                theirs = metric_value(plain and plain.get("test"), key)
                misses.append(f"- {name} {label}: {ours:.3f} against ≥ {target:.2f} "
                              f"(plain {fmt(theirs)})")
    if misses:
        lines += ["", "Targets not met in this run:", "", *misses]
    lines += ["", "Commands, from the repository root:", "", "```bash"]
    for name in DATASETS:
        entry = data.get(name, {})
        for side in ("plain", "tune"):
            if entry.get(side):
                lines.append(entry[side]["command"])
    lines += ["```", "", END]
    return "\n".join(lines)


def render_defaults(results: dict[str, Any]) -> str:
    """The defaults-only table next to the tuned one, from the results JSON alone."""
    data = results.get("datasets", {})
    lines = [DEFAULTS_BEGIN, "", "## The five datasets with labelwise's defaults", "",
             ("Command: `.venv/bin/python bench/bench_vs_plain.py --defaults` (raw results: "
              "`bench/results/vs_plain.json`, the `defaults` entries). Each config "
              "(`bench/configs/defaults_NAME.yaml`) holds only the data, the objective and the "
              "budget (`search.timeout`, 27.5 of the 30 minutes of the whole command): epochs, "
              "evaluations, the trial count and the space are what labelwise derives from the "
              "budget, the speed it measures on the first steps and the model "
              "(`labelwise.plan.budget`, `labelwise.plan.space`). Same machine and model as "
              "above; test split."), "",
             "| dataset | metric | tuned config | defaults | raised target | met? |",
             "|---|---|---:|---:|---:|---|"]
    lines += metric_rows(data, "tune", "defaults",
                         lambda name, key, target: RAISED.get(name, {}).get(key))
    lines += ["", ("| dataset | finished (UTC) | wall time / budget, other load | what "
                   "labelwise chose | trials complete / pruned / failed | best params (valid "
                   "objective) |"),
              "|---|---|---|---|---|---|"]
    for name in DATASETS:
        run = data.get(name, {}).get("defaults")
        if not run:
            lines.append(f"| {name} | not run | – | – | – | – |")
            continue
        chosen = run.get("trial_budget") or {}
        epochs = f"{chosen['epochs']:g} epoch" + ("" if chosen.get("epochs") == 1 else "s")
        evals = chosen.get("evals_per_epoch")
        what = (f"{epochs}, {evals} evaluation{'' if evals == 1 else 's'} an "
                f"epoch (measured {chosen['epoch_seconds'] / 60:.1f} min an epoch, room for "
                f"{chosen['full_trials']:g} full trials)" if chosen else "the config's")
        if run.get("pruner"):
            what += f", {run['pruner'].replace('_', ' ')} pruner"
        t = run["trials"]
        finished = run.get("finished", "–").replace("T", " ")[:16]
        lines.append(f"| {name} | {finished} | {run['wall_seconds'] / 60:.1f} / "
                     f"{run['budget_seconds'] / 60:.0f} min, {run['other_cpu_share']:.0%} | "
                     f"{what} | {t['complete']} / {t['pruned']} / {t['failed']} | "
                     f"{fmt_params(run['best_params'])} (valid "
                     f"{OBJECTIVE[name].split(' ')[0]} {fmt(run['best_valid_value'])}) |")
    lines += ["", "```bash", *(data[n]["defaults"]["command"] for n in DATASETS
                               if data.get(n, {}).get("defaults")), "```", "", DEFAULTS_END]
    return "\n".join(lines)


def _replace_section(text: str, begin: str, end: str, section: str) -> str:
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        return pattern.sub(lambda _: section, text)
    return text.rstrip("\n") + "\n\n" + section + "\n"


def write_markdown(path: Path, results: dict[str, Any]) -> None:
    """Replace the marked sections of ``path`` (or append them if the markers are absent):
    the defaults table only once a defaults run exists."""
    text = path.read_text() if path.exists() else ""
    text = _replace_section(text, BEGIN, END, render(results))
    if any(e.get("defaults") for e in results.get("datasets", {}).values()):
        text = _replace_section(text, DEFAULTS_BEGIN, DEFAULTS_END, render_defaults(results))
    path.write_text(text)


def tune_budget(budget: float, finish_by: dt.datetime | None, left: int,
                plain_left: float) -> float:
    """This tune's budget: ``budget``, or an equal share of the time left before ``finish_by``."""
    if finish_by is None:
        return budget
    now = dt.datetime.now(dt.UTC)
    share = ((finish_by - now).total_seconds() - plain_left) / max(left, 1)
    return float(min(budget, max(300.0, share // 60 * 60)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(DATASETS),
                        help="comma-separated datasets (default: all five)")
    parser.add_argument("--parts", default="plain,tune", help="plain, tune or both")
    parser.add_argument("--budget", type=float, default=BUDGET,
                        help="seconds for each whole tune command (default 1800)")
    parser.add_argument("--finish-by", default=None,
                        help="UTC time (ISO) by which the tunes must end; cuts budgets")
    parser.add_argument("--rows", type=int, default=None,
                        help="plain runs train on the first N rows only (a quick check)")
    parser.add_argument("--tune-set", action="append", default=[], metavar="KEY=VALUE",
                        help="passed to labelwise tune as --set (a quick check)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "vs_plain.json")
    parser.add_argument("--markdown", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--defaults", action="store_true",
                        help="tune with bench/configs/defaults_NAME.yaml (data, objective and "
                        "budget only) instead of the tuned configs; implies --parts tune")
    parser.add_argument("--render-only", action="store_true",
                        help="regenerate the BENCHMARKS.md section from --out and exit")
    args = parser.parse_args()
    results: dict[str, Any] = (json.loads(args.out.read_text()) if args.out.exists()
                               else {"benchmark": "vs_plain", "datasets": {}})
    if args.render_only:
        write_markdown(args.markdown, results)
        return
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if args.defaults:
        parts = {"tune"}
    if set(names) - set(DATASETS) or not names or parts - {"plain", "tune"} or not parts:
        parser.error(f"choose datasets from {', '.join(DATASETS)} and parts from plain, tune")
    finish_by = (dt.datetime.fromisoformat(args.finish_by).replace(tzinfo=dt.UTC)
                 if args.finish_by else None)
    results.update({"benchmark": "vs_plain", "machine": machine(),
                    "model": "packaged all-MiniLM-L6-v2 (model.name_or_path: null)",
                    "budget_seconds": args.budget})
    data = results.setdefault("datasets", {})
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def save(name: str, side: str, entry: dict[str, Any]) -> None:
        data.setdefault(name, {})[side] = entry
        results["datasets"] = {n: data[n] for n in DATASETS if n in data}
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        write_markdown(args.markdown, results)

    with tempfile.TemporaryDirectory(prefix="bench_vs_plain_") as logs:
        if "plain" in parts:
            for name in (n for n in DATASETS if n in names):
                entry = run_plain(name, args.rows, Path(logs))
                save(name, "plain", entry)
        if "tune" in parts:
            todo = [n for n in TUNE_ORDER if n in names]
            for i, name in enumerate(todo):
                budget = tune_budget(args.budget, finish_by, len(todo) - i, 0.0)
                kind = "defaults" if args.defaults else "tune"
                save(name, kind, run_tune(name, budget, Path(logs), args.tune_set, kind))
    print(render(results))


if __name__ == "__main__":
    main()
