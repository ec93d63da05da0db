"""The labelled files a fine-tuning run reads: one frame with each row's file (`source`),
each file named as reports name it (`tfns/valid`), and weighted as the run asks."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from llm.errors import ModelError
from llm.infer.evaluate import read_labelled


def read_training_files(paths: list[str], text_col: str, label_cols: list[str]) -> pl.DataFrame:
    """Concatenate labelled files; each file's label column is the first of `label_cols` it
    has (TFNS calls it `label`, StockEmotions `sentiment`)."""
    import pyarrow.parquet as pq

    frames = []
    for path in paths:
        columns = (pq.read_schema(path).names if str(path).endswith(".parquet")
                   else pl.read_csv(path, n_rows=1).columns)
        label = next((c for c in label_cols if c in columns), None)
        if label is None:
            raise ModelError(f"{path}: none of the label columns {label_cols} (columns: "
                             f"{columns})")
        frames.append(read_labelled(path, text_col, label).with_columns(source=pl.lit(str(path))))
    return pl.concat(frames)


def source_name(path) -> str:
    """How reports name a labelled file: its folder and stem (`tfns/valid`)."""
    return f"{Path(path).parent.name}/{Path(path).stem}"


def with_source_weights(train: pl.DataFrame, source_weights: dict[str, float]) -> pl.DataFrame:
    """`train` with each row's loss weight (`weight`) from its file's `source_name`; a weight
    must name a training file and be at least 0."""
    if "source" not in train.columns:
        raise ModelError("source weights need the training rows' `source` (their file): read "
                         "them with `read_training_files`")
    names = {path: source_name(path) for path in train["source"].unique()}
    unknown = set(source_weights) - set(names.values())
    if unknown:
        raise ModelError(f"source weights for {sorted(unknown)}, which are not training files "
                         f"(the training files are {sorted(names.values())}): name a file as "
                         "folder/stem")
    negative = {name: w for name, w in source_weights.items() if not w >= 0}
    if negative:
        raise ModelError(f"source weights {negative}: a weight must be at least 0")
    weight = {path: float(source_weights.get(name, 1.0)) for path, name in names.items()}
    return train.with_columns(weight=pl.col("source").replace_strict(weight))
