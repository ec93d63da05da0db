"""The labelled files a fine-tuning run reads: one frame with each row's file (`source`),
each file named as reports name it (`tfns/valid`), and weighted as the run asks."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from llm.errors import ModelError
from llm.evaluate import read_labelled


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
    """`train` with each row's loss weight (`weight`) from its file's `source_name`."""
    if "source" not in train.columns:
        raise ModelError("source weights need the training rows' `source` (their file): read "
                         "them with `read_training_files`")
    names = {source_name(s) for s in train["source"].unique()}
    unknown = set(source_weights) - names
    if unknown:
        raise ModelError(f"source weights for {sorted(unknown)}, which are not training files "
                         f"(the training files are {sorted(names)}): name a file as folder/stem")
    weight = {s: float(source_weights.get(source_name(s), 1.0)) for s in train["source"].unique()}
    return train.with_columns(weight=pl.col("source").replace_strict(weight))
