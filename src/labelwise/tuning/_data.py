"""In-memory data for searches that run trials in other processes.

Worker processes (``workers > 1``) and Ray trials re-read the config, so data given as a
DataFrame, a ``datasets.Dataset`` or a list of dicts is written once to Parquet files in the
output directory (``OUTPUT/data/<split>.parquet``, row index kept) and the config they read
names those files. The data fingerprints stay those of the data in memory.
"""

from __future__ import annotations

from pathlib import Path

from labelwise.data.io import content_sha, in_memory, read_table
from labelwise.errors import ConfigError
from labelwise.plan.config import RunConfig, config_from_dict

__all__ = ["needs_files", "with_data_files", "DATA_DIR"]

SPLITS = ("train", "valid", "test")
DATA_DIR = "data"  # inside the search's output dir


def needs_files(config: RunConfig) -> bool:
    return any(in_memory(getattr(config.data, s)) for s in SPLITS)


def with_data_files(config: RunConfig, output_dir: Path) -> RunConfig:
    """``config`` with each in-memory split written to ``output_dir/data/<split>.parquet``."""
    folder = output_dir / DATA_DIR
    data = config.model_dump()
    folder.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        value = getattr(config.data, split)
        if not in_memory(value):
            continue
        frame = read_table(value, split=split).frame
        path = folder / f"{split}.parquet"
        tmp = path.with_suffix(".parquet.tmp")
        try:
            frame.to_parquet(tmp)
        except Exception as exc:  # pyarrow refuses columns it cannot type
            raise ConfigError(f"the {split} split cannot be written for the worker processes: "
                              f"{str(exc).splitlines()[0]}", fix="save it to a file and pass "
                              "the path, or run the search with workers=1",
                              code="LW337") from None
        tmp.replace(path)
        back = read_table(path, split=split).frame
        if content_sha(back) != content_sha(frame):
            raise ConfigError(f"the {split} split does not read back the same from Parquet",
                              where=f"file {path}", fix="save it to a file and pass the path, "
                              "or run the search with workers=1", code="LW337")
        data["data"][split] = str(path.resolve())
    return config_from_dict(data)
