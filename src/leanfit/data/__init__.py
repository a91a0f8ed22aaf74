"""Data: sources, column typing, quality checks, splits and the leak-free preprocessor.

This is the training side; importing it imports pandas, pyarrow and scikit-learn.

Example:
    >>> from leanfit.data import load_dataset, make_splits
    >>> ds = load_dataset("synthetic:classification?rows=100&features=4&seed=0")
    >>> splits = make_splits(ds.y, ds.task, seed=0)
    >>> len(splits.train) + len(splits.valid) + len(splits.test)
    100
"""

from __future__ import annotations

from .dataset import Dataset, coerce_frame, load_dataset
from .infer import ColumnInfo, infer_columns, infer_task
from .prepare import Prepared, prepare
from .preprocess import OPSETS, build_preprocessor, preprocessor_to_onnx, to_feature_matrix
from .quality import QualityReport, quality_report
from .sources import BUNDLED, SYNTHETIC, read_source
from .split import Splits, cv_folds, make_splits

__all__ = [
    "BUNDLED",
    "OPSETS",
    "SYNTHETIC",
    "ColumnInfo",
    "Dataset",
    "Prepared",
    "QualityReport",
    "Splits",
    "build_preprocessor",
    "coerce_frame",
    "cv_folds",
    "infer_columns",
    "infer_task",
    "load_dataset",
    "make_splits",
    "prepare",
    "preprocessor_to_onnx",
    "quality_report",
    "read_source",
    "to_feature_matrix",
]
