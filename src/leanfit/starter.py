"""``leanfit init``: a starter recipe written from what the data looks like."""

from __future__ import annotations

from collections import Counter

import yaml

from .data import load_dataset

__all__ = ["starter_recipe"]


def starter_recipe(source: str, *, target: str | None = None) -> str:
    """Infer the task and column types of ``source`` and return a commented recipe (YAML).

    Example:
        >>> text = starter_recipe("sklearn:iris")
        >>> "task: classification" in text
        True
    """
    data = load_dataset(source, target=target)
    kinds = Counter(c.kind for c in data.columns)
    categorical = [c.name for c in data.columns if c.kind == "categorical"]
    dropped = list(data.quality.dropped)
    data_section: dict[str, object] = {"source": source, "target": data.target, "task": data.task}
    if categorical:
        data_section["categorical"] = categorical
    if data.image_shape:
        data_section["image_shape"] = list(data.image_shape)
    families = ["linear", "hgb", "knn", "mlp"] + (["cnn"] if data.image_shape else [])
    recipe = {
        "name": _name(source),
        "seed": 0,
        "data": data_section,
        "search": {"families": families, "sampler": "tpe", "pruner": "median", "trials": 40, "timeout": 300},
    }
    header = [
        f"# leanfit recipe for {source}, written by `leanfit init`.",
        f"# {len(data.y)} rows; task {data.task}"
        + (f" with {len(data.classes)} classes {data.classes[:10]}" if data.classes else "")
        + ".",
        "# Columns: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) + ".",
    ]
    header += [f"#   {c.name}: {c.kind}" for c in data.columns[:60]]
    if len(data.columns) > 60:
        header.append(f"#   ... and {len(data.columns) - 60} more")
    header += [f"# note: {w}" for w in data.quality.warnings]
    if dropped:
        header.append(
            f"# leanfit drops {', '.join(dropped)} at run time (ID-like or constant) and says so; "
            "list columns under data.drop to drop others."
        )
    header.append("# Every key is documented in the README's recipe reference.")
    body = yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True)
    return "\n".join(header) + "\n" + body


def _name(source: str) -> str:
    from .recipe import _name_from_source

    return _name_from_source(source)
