"""The run configuration: validated, frozen, sections, unknown keys are errors.

User input is kept verbatim in these models; everything derived from it lives in the
resolved :class:`~labelwise.plan.Plan`. Load with :func:`load_config` from YAML or TOML,
with ``key=value`` overrides from the command line.
"""

from __future__ import annotations

import difflib
import errno
import re
import tomllib
from collections.abc import Iterable, Mapping
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field,
                      PlainSerializer, ValidationError, field_validator, model_validator)

from labelwise.data.io import describe_data, in_memory, is_data_path
from labelwise.errors import ConfigError, LabelwiseError
from labelwise.findings import Finding, Where

__all__ = [
    "DataConfig", "ModelConfig", "TrainConfig", "ObjectiveConfig", "SearchConfig",
    "FloatDistribution", "IntDistribution", "CategoricalDistribution", "RunConfig", "RayConfig",
    "load_config", "config_from_dict", "apply_overrides", "field_paths", "resolve_config",
    "DATA_KEYWORDS", "TRAIN_KEYWORDS", "config_from_call",
]


def _no_bool(value: Any) -> Any:
    # epochs: true -> refused, not read as 1
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    return value


# Numbers that refuse true/false: pydantic reads a bool as 1 or 0 for int and float fields.
Int = Annotated[int, BeforeValidator(_no_bool)]
Float = Annotated[float, BeforeValidator(_no_bool)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Scalar = str | int | float | bool


def _data_source(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str) or in_memory(value):
        return value
    raise ValueError("must be a file path, a pandas DataFrame, a datasets.Dataset or "
                     f"DatasetDict, or a list of dicts, not a {type(value).__name__}")


def _data_json(value: Any) -> Any:
    return value if isinstance(value, str) else f"<{describe_data(value)}>"


# A path, or data in memory. A JSON dump (a saved plan, a model's labelwise.json) records
# in-memory data as "<DataFrame, 8,000 rows, sha ...>": the config still loads, and running
# it asks for the data again.
DataSource = Annotated[Any, BeforeValidator(_data_source),
                       PlainSerializer(_data_json, when_used="json")]


class DataConfig(_Section):
    """Where the data is and how to read its labels."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    train: DataSource
    valid: DataSource | None = None
    test: DataSource | None = None

    @model_validator(mode="before")
    @classmethod
    def _splits_by_name(cls, data: Any) -> Any:
        """A ``DatasetDict`` as ``train`` gives its splits by name (train, validation or
        valid or val or dev, test), unless valid or test are given too."""
        if isinstance(data, Mapping) and in_memory(data.get("train")) and \
                type(data["train"]).__name__.endswith("DatasetDict") and \
                data.get("valid") is None and data.get("test") is None:
            from labelwise.data.io import split_dataset_dict

            try:
                splits = split_dataset_dict(data["train"])
            except LabelwiseError as err:
                raise ValueError(err.what) from None
            data = {**data, **splits}
        return data
    text_column: str = "text"
    text_pair_column: str | None = None
    label_columns: list[str] = Field(default_factory=lambda: ["label"], min_length=1)
    task: Literal["auto", "binary", "multiclass", "multilabel", "regression"] = "auto"
    classes: list[str | int | bool] | None = None
    label_sep: str | None = None
    positive: str | int | bool | None = None
    valid_size: Float = Field(0.1, gt=0.0, lt=1.0)
    split_seed: Int = 42
    # rows left out before anything else: a CSV with a 'row' column (and optionally 'split'),
    # e.g. the reviewed file of `labelwise inspect --label-errors-out`
    exclude_rows: str | None = None


class ModelConfig(_Section):
    """The pretrained model and its head. ``name_or_path: null`` is the packaged MiniLM."""

    name_or_path: str | None = None
    binary_head: Literal["two_logit", "one_logit"] = "two_logit"
    max_length: Int = Field(128, ge=8, le=8192)
    problem_type: str | None = None
    num_labels: Int | None = Field(None, ge=1)
    reinit_head: bool = False
    trust_remote_code: bool = False
    revision: str | None = None
    dropout: Float | None = Field(None, ge=0.0, lt=1.0)
    # a new head's output bias; auto: the training prior for sigmoid and regression heads,
    # the model's init for softmax heads (see heads.py and _preflight.head_bias)
    head_bias: Literal["auto", "prior", "model"] = "auto"


def _check_device(value: str) -> str:
    if not re.fullmatch(r"auto|cpu|mps|cuda(:[0-9]+)?", value):
        raise ValueError("must be auto, cpu, mps, cuda or cuda:<index> (like cuda:1)")
    return value


class TrainConfig(_Section):
    """Optimisation settings of one training run."""

    epochs: Float = Field(3.0, gt=0.0, le=1000.0)
    max_steps: Int | None = Field(None, ge=1)
    batch_size: Int = Field(32, ge=1, le=4096)
    eval_batch_size: Int | None = Field(None, ge=1, le=4096)
    learning_rate: Float = Field(5.0e-5, gt=0.0, le=1.0)
    head_learning_rate: Float | None = Field(None, gt=0.0, le=1.0)  # None: learning_rate
    weight_decay: Float = Field(0.0, ge=0.0, le=1.0)
    warmup_ratio: Float = Field(0.0, ge=0.0, lt=1.0)
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "linear"
    gradient_accumulation_steps: Int = Field(1, ge=1, le=1024)
    max_grad_norm: Float = Field(1.0, gt=0.0)
    label_smoothing: Float = Field(0.0, ge=0.0, lt=1.0)
    label_smoothing_mode: Literal["ce", "bce"] = "ce"
    loss: Literal["auto", "cross_entropy", "bce", "focal", "mse"] = "auto"
    focal_gamma: Float = Field(2.0, ge=0.0, le=10.0)
    class_weights: Literal["balanced"] | dict[str, Float] | list[Float] | None = None
    pos_weight: Literal["balanced"] | dict[str, Float] | list[Float] | Float | None = None
    seed: Int = 42
    evals_per_epoch: Int = Field(1, ge=1, le=100)
    early_stopping_patience: Int | None = Field(None, ge=1)
    length_bucketing: bool = True
    # used: train only the word-embedding rows of tokens in the train and valid splits (the
    # same model at weight_decay 0, where AdamW leaves the other rows as they are; with
    # weight decay the whole matrix is trained); all: always the whole matrix
    embedding_rows: Literal["used", "all"] = "used"
    threads: Int | None = Field(None, ge=1)
    # what binary / multilabel thresholds maximise on validation; auto: the objective's
    # kind (accuracy for an accuracy, subset-accuracy or Hamming-loss objective, else F1)
    threshold_metric: Literal["auto", "f1", "accuracy"] = "auto"
    # auto: CUDA if available, else Apple MPS, else the CPU; cuda:N pins one GPU
    device: Annotated[str, AfterValidator(_check_device)] = "auto"
    # auto: bf16 on a GPU that has it, else fp16 with loss scaling on CUDA; fp32 on a CPU
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    gradient_checkpointing: bool = False
    torch_compile: bool = False
    # Transformers' reporting integrations (tensorboard, mlflow, wandb, ..., all; none or
    # [] for none); logs go inside the output dir (see labelwise.training.tracking)
    report_to: Annotated[list[str], BeforeValidator(
        lambda v: [] if v in (None, "none") else [v] if isinstance(v, str) else v)] = Field(
        default_factory=list)


class FloatDistribution(_Section):
    type: Literal["float"]
    low: Float
    high: Float
    log: bool = False
    step: Float | None = Field(None, gt=0.0)

    @model_validator(mode="after")
    def _check(self) -> FloatDistribution:
        _check_range(self.low, self.high, self.log, self.step)
        return self


class IntDistribution(_Section):
    type: Literal["int"]
    low: Int
    high: Int
    log: bool = False
    step: Int = Field(1, ge=1)

    @model_validator(mode="after")
    def _check(self) -> IntDistribution:
        _check_range(self.low, self.high, self.log, self.step if self.step != 1 else None)
        return self


class CategoricalDistribution(_Section):
    type: Literal["categorical"]
    choices: list[Any] = Field(min_length=1)


def _check_range(low: float, high: float, log: bool, step: float | None) -> None:
    if low > high:
        raise ValueError(f"`low <= high` must hold, but got (low={low}, high={high})")
    if log and low <= 0:
        raise ValueError(f"a log distribution needs low > 0, but got low={low}")
    if log and step is not None:
        raise ValueError("step and log cannot be used together")


Distribution = Annotated[FloatDistribution | IntDistribution | CategoricalDistribution,
                         Field(discriminator="type")]


class ObjectiveConfig(_Section):
    """The search objective: one metric, an explicit direction, the validation split."""

    metric: str
    direction: Literal["maximize", "minimize"]
    split: Literal["valid"] = "valid"


class RayConfig(_Section):
    """Ray Tune settings (``search.backend: ray``)."""

    address: str | None = None  # "auto" or "HOST:PORT"; None starts a local Ray
    cpus_per_trial: Float = Field(1.0, gt=0.0, le=1024.0)
    gpus_per_trial: Float = Field(0.0, ge=0.0, le=64.0)
    max_concurrent_trials: Int | None = Field(None, ge=1)
    reduction_factor: Float = Field(2.0, gt=1.0, le=16.0)  # ASHA: keep 1/rf at each rung
    grace_period: Int = Field(1, ge=1)  # ASHA: evaluations before a trial can be stopped


class SearchConfig(_Section):
    """Hyperparameter search settings."""

    n_trials: Int = Field(20, ge=1, le=100000)
    timeout: Float | None = Field(None, gt=0.0)
    objective: ObjectiveConfig | None = None
    space: dict[str, Distribution] | None = None
    sampler: Literal["tpe", "random"] = "tpe"
    # auto: successive halving when the trial length comes from search.timeout (the rule
    # in labelwise.plan.budget), else median
    pruner: Literal["auto", "median", "successive_halving", "hyperband", "none"] = "auto"
    seed: Int = 42
    # a registered backend's name (labelwise.tuning.register_backend), checked by tune
    backend: str = Field("optuna", pattern=r"^[a-z][a-z0-9_-]*$")
    storage: str | None = None
    study_name: str | None = None
    workers: Int = Field(1, ge=1, le=64)
    # --workers processes that may share one GPU (each worker sees one GPU)
    trials_per_gpu: Int = Field(1, ge=1, le=64)
    refit: bool = False
    ray: RayConfig = Field(default_factory=RayConfig)

    @field_validator("space")
    @classmethod
    def _space_not_empty(cls, space: dict[str, Any] | None) -> dict[str, Any] | None:
        # space: {} -> refused: it searches nothing, and taking the default space instead
        # would search what was not asked for
        if space is not None and not space:
            raise ValueError("must not be empty: an empty space searches nothing (leave "
                             "search.space out to search the default space, or list keys)")
        return space


class RunConfig(_Section):
    """A whole run: ``data``, ``model``, ``train``, optional ``search``, ``output_dir``."""

    data: DataConfig
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    search: SearchConfig | None = None
    output_dir: str | None = None


SECTIONS: dict[str, type[BaseModel]] = {
    "data": DataConfig, "model": ModelConfig, "train": TrainConfig, "search": SearchConfig,
}


def field_paths() -> list[str]:
    """Every dotted config key, e.g. ``train.learning_rate``."""
    out = [f"{name}.{f}" for name, model in SECTIONS.items() for f in model.model_fields]
    return out + ["output_dir", "search.objective.metric", "search.objective.direction",
                  "search.objective.split"] + [f"search.ray.{f}" for f in RayConfig.model_fields]


def _suggest(key: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _findings(err: ValidationError, source: str | None) -> list[Finding]:
    out = []
    paths = field_paths()
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if not str(p).startswith(("function-after",)))
        where = Where(file=source, detail=f"key {loc}")
        if e["type"] == "extra_forbidden":
            parent = loc.rsplit(".", 1)[0] if "." in loc else ""
            pool = [p for p in paths if p.startswith(parent)] if parent else list(SECTIONS) + [
                "output_dir"]
            out.append(Finding("LW301", "error", f"unknown key '{loc}'{_suggest(loc, pool)}",
                               where, "remove it or correct its name"))
        elif e["type"] == "missing":
            out.append(Finding("LW302", "error", f"missing key '{loc}'", where,
                               f"add {loc} to the config"))
        else:
            value = e.get("input")
            shown = repr(value) if not isinstance(value, (dict, list)) or len(str(value)) < 60 \
                else type(value).__name__
            msg = e["msg"].removeprefix("Value error, ") if e["type"] == "value_error" \
                else e["msg"].lower()
            out.append(Finding("LW303", "error", f"'{loc}' {msg.rstrip('.')}. "
                               f"Got {shown} instead", where, "fix the value"))
    return out


def config_from_dict(data: Mapping[str, Any], *, source: str | None = None) -> RunConfig:
    """Validate a plain mapping into a frozen :class:`RunConfig`.

    Raises:
        ConfigError: every unknown key (with a "did you mean"), missing key and bad value,
            listed in one message; ``err.findings`` holds them one by one.
    """
    try:
        return RunConfig.model_validate(dict(data))
    except ValidationError as exc:
        findings = _findings(exc, source)
        err = ConfigError("; ".join(f.message for f in findings),
                          where=f"file {source}" if source else "",
                          fix=findings[0].fix if len(findings) == 1 else
                          "fix each key named above", code=findings[0].code)
        err.findings = findings  # type: ignore[attr-defined]
        raise err from None


def _parse_scalar(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(data: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` overrides (values parsed as YAML) to a config mapping."""
    out: dict[str, Any] = _deep_copy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not key=value",
                              fix="write it as --set train.learning_rate=3e-5", code="LW304")
        key, _, raw = item.partition("=")
        parts = key.strip().split(".")
        node = out
        for part in parts[:-1]:
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"override '{key}' goes inside '{part}', which is not a "
                                  "section", code="LW304", fix="check the key")
            node = nxt
        node[parts[-1]] = _parse_scalar(raw)
    return out


def _deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) and not in_memory(v) else v
            for k, v in data.items()}


def _yaml_loader() -> Any:
    """``yaml.SafeLoader`` that refuses a key written twice in one mapping."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader: Any, node: Any, deep: bool = False) -> Any:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise _DuplicateKey(key, seen[key], line)
            seen[key] = line
        return loader.construct_mapping(node, deep=deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return Loader


class _DuplicateKey(Exception):
    pass


def _parse_yaml(text: str, path: Path) -> Any:
    import yaml

    try:
        return yaml.load(text, Loader=_yaml_loader())  # noqa: S506 - a SafeLoader
    except _DuplicateKey as dup:
        key, first, second = dup.args
        raise ConfigError(f"key '{key}' is written twice (lines {first} and {second}); YAML "
                          "would keep only the last", where=f"file {path}, line {second}",
                          fix="keep one of them", code="LW306") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context = getattr(exc, "context", None)
        at = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = f"{problem} ({context})" if context else problem
        raise ConfigError(f"cannot parse config as YAML: {what}", where=f"file {path}{at}",
                          fix="check the YAML syntax there", code="LW305") from None


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or TOML file into a mapping; relative data paths stay as written.

    Raises:
        ConfigError: The file is missing, a directory, not UTF-8, not valid YAML/TOML (with
            line and column), or has a key written twice (both lines).
    """
    path = Path(path)
    if not path.exists():
        what = "config file not found"
        if path.is_symlink():
            try:
                path.resolve(strict=True)
            except RuntimeError:  # Python 3.11-3.12 name a loop so
                what = "config path is a symlink loop"
            except OSError as exc:
                what = ("config path is a symlink loop" if exc.errno == errno.ELOOP else
                        "config path is a symlink to a missing file")
        raise ConfigError(what, where=f"file {path}", fix="check the path", code="LW305")
    if path.is_dir():
        raise ConfigError("config path is a directory", where=f"file {path}",
                          fix="name the YAML or TOML file in it", code="LW305")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError("config file is not UTF-8 text", where=f"file {path}, line {line}",
                          fix="re-save it as UTF-8", code="LW305") from None
    if path.suffix.lower() == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:  # its message ends "(at line L, column C)"
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(f"cannot parse config as TOML: {first}", where=f"file {path}",
                              fix="check the TOML syntax there", code="LW305") from None
    else:
        data = _parse_yaml(text, path) or {}
    if not isinstance(data, dict):
        raise ConfigError("config must be a mapping of sections", where=f"file {path}",
                          fix="start with data:, model:, train:", code="LW305")
    return data


def load_config(path: str | Path | None = None, *, overrides: Iterable[str] = (),
                base: Mapping[str, Any] | None = None) -> RunConfig:
    """Load a :class:`RunConfig` from YAML/TOML (or ``base``), then apply overrides."""
    data = read_config_file(path) if path is not None else dict(base or {})
    data = apply_overrides(data, overrides)
    return config_from_dict(data, source=str(path) if path is not None else None)


# The keywords that train, tune and check take besides a config: the data keys and the
# common train keys. Anything else goes through a config object or a dict.
DATA_KEYWORDS = ("train", "valid", "test", "text_column", "text_pair_column", "label_columns",
                 "task")
TRAIN_KEYWORDS = ("epochs", "max_steps", "batch_size", "learning_rate", "seed")


def config_from_call(config: Any, keywords: Mapping[str, Any], *, source: str | None = None
                     ) -> tuple[RunConfig, str | None]:
    """:func:`resolve_config` for a verb that takes :data:`DATA_KEYWORDS`,
    :data:`TRAIN_KEYWORDS`, ``model`` and ``output_dir`` as keywords: ``keywords`` holds the
    values it was called with (the others are ignored)."""
    return resolve_config(
        config, source=source, model=keywords.get("model"),
        output_dir=keywords.get("output_dir"),
        data={k: keywords.get(k) for k in DATA_KEYWORDS},
        train={k: keywords.get(k) for k in TRAIN_KEYWORDS})


def _is_config_path(value: Any) -> bool:
    return isinstance(value, (str, Path)) and not is_data_path(value)


def resolve_config(config: Any = None, *, source: str | None = None,
                   data: Mapping[str, Any] | None = None,
                   train: Mapping[str, Any] | None = None, model: str | None = None,
                   output_dir: str | Path | None = None) -> tuple[RunConfig, str | None]:
    """A :class:`RunConfig` from what a Python caller passes, and the file to quote.

    ``config`` is a RunConfig, a dict, the path of a YAML/TOML config, or the training data
    itself (a data file path, a DataFrame, a Dataset, a DatasetDict, a list of dicts).
    ``data`` and ``train`` hold the keyword values given (``None`` ones are dropped); they
    override the config's.

    Raises:
        ConfigError: The config is of another type, or a value is invalid.
    """
    data = {k: v for k, v in (data or {}).items() if v is not None}
    train = {k: v for k, v in (train or {}).items() if v is not None}
    if isinstance(data.get("label_columns"), str):
        data["label_columns"] = [data["label_columns"]]
    if isinstance(data.get("task"), Enum):
        data["task"] = data["task"].value
    if isinstance(config, RunConfig) and not (data or train or model or output_dir):
        return config, source
    if config is None:
        base: dict[str, Any] = {}
    elif isinstance(config, RunConfig):
        base = config.model_dump(exclude_unset=True)  # what the user set stays set
    elif isinstance(config, Mapping):
        base = _deep_copy(config)
    elif _is_config_path(config):
        source = source or str(config)
        base = read_config_file(config)
    elif is_data_path(config) or in_memory(config):
        if "train" in data:
            raise ConfigError("the training data is given twice: as the first argument and "
                              "as train=", fix="pass it once", code="LW308")
        base, data = {}, {"train": config, **data}
    else:
        raise ConfigError(f"cannot read a run config from a {type(config).__name__}",
                          fix="pass a RunConfig, a dict, a YAML/TOML path, or the training "
                          "data (train=df)", code="LW308")
    if data:
        base["data"] = {**(base.get("data") or {}), **data}
    if train:
        base["train"] = {**(base.get("train") or {}), **train}
    if model is not None:
        base["model"] = {**(base.get("model") or {}), "name_or_path": str(model)}
    if output_dir is not None:
        base["output_dir"] = str(output_dir)
    if "data" not in base:
        raise ConfigError("no training data given", fix="pass train= (a path, a DataFrame, "
                          "a datasets.Dataset or DatasetDict, or a list of dicts) or a config "
                          "with data.train", code="LW302")
    return config_from_dict(base, source=source), source
