"""Model families in the store: variants with their lineage (parent, method, parameters,
sparsity), and their accuracy on datasets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

import pandas
from sqlalchemy import delete, insert, select, update

from hilbench.core.errors import ModelError, StoreError
from hilbench.core.records import AccuracyRecord, ModelRecord
from hilbench.profiles.schema import accuracy, models
from hilbench.profiles.store import Store, model_id

MODEL_COLUMNS = ("sha256", "name", "format", "path", "size_bytes", "parent_sha256",
                 "compression", "added_at")
ACCURACY_COLUMNS = tuple(c.name for c in accuracy.columns if c.name != "id")


def save_accuracy(store: Store, records: Sequence[AccuracyRecord]) -> None:
    """Store scores; measuring a (model, dataset, metric, runtime) again replaces its score.
    Every model scored must already be in the store."""
    with store.transaction() as connection:
        for record in records:
            known = connection.execute(
                select(models.c.id).where(models.c.sha256 == record.model_sha256)).first()
            if known is None:
                raise StoreError(f"accuracy for model {record.model_sha256[:12]}, which is not "
                                 "in the store: record the model first")
            connection.execute(delete(accuracy).where(
                accuracy.c.model_sha256 == record.model_sha256,
                accuracy.c.dataset_sha256 == record.dataset_sha256,
                accuracy.c.metric == record.metric, accuracy.c.runtime == record.runtime))
            connection.execute(insert(accuracy).values(**asdict(record)))


def accuracy_frame(store: Store, model_sha256: str | None = None) -> pandas.DataFrame:
    """One row per stored score (with the model's name), newest first."""
    query = (select(accuracy, models.c.name.label("model"))
             .join(models, models.c.sha256 == accuracy.c.model_sha256)
             .order_by(accuracy.c.measured_at.desc(), accuracy.c.id.desc()))
    if model_sha256 is not None:
        query = query.where(accuracy.c.model_sha256 == model_sha256)
    with store.connection() as connection:
        rows = [dict(row._mapping) for row in connection.execute(query)]
    frame = pandas.DataFrame(rows, columns=["model", *ACCURACY_COLUMNS])
    frame["value"] = pandas.to_numeric(frame["value"]).astype(float)
    return frame


def add_variant(store: Store, variant: ModelRecord) -> None:
    """Record a variant with its lineage; its parent must be in the store already. A file
    stored before without lineage (benchmarked as a plain model) gets it now."""
    with store.transaction() as connection:
        if variant.parent_sha256 is not None:
            parent = connection.execute(
                select(models.c.id).where(models.c.sha256 == variant.parent_sha256)).first()
            if parent is None:
                raise StoreError(f"variant {variant.name}: its parent "
                                 f"{variant.parent_sha256[:12]} is not in the store")
        row = model_id(connection, variant)
        connection.execute(update(models).where(
            models.c.id == row, models.c.parent_sha256.is_(None)).values(
            parent_sha256=variant.parent_sha256, compression=variant.compression,
            name=variant.name, path=variant.path))


def models_frame(store: Store) -> pandas.DataFrame:
    """Every model and variant, oldest first, with parent and compression."""
    query = select(*(models.c[name] for name in MODEL_COLUMNS)).order_by(models.c.id)
    with store.connection() as connection:
        rows = [dict(row._mapping) for row in connection.execute(query)]
    return pandas.DataFrame(rows, columns=list(MODEL_COLUMNS))


def family(store: Store, base_sha256: str) -> pandas.DataFrame:
    """The base model and every variant descending from it (children, grandchildren...)."""
    frame = models_frame(store)
    members = {base_sha256}
    while True:
        grown = members | set(frame.sha256[frame.parent_sha256.isin(members)])
        if grown == members:
            break
        members = grown
    return frame[frame.sha256.isin(members)].reset_index(drop=True)


def family_named(store: Store, name: str) -> tuple[str, pandas.DataFrame]:
    """The file of the stored model called ``name`` (or whose sha256 starts with it), and
    its family; ``ModelError`` when there is none."""
    frame = models_frame(store)
    base = frame[(frame.name == name) | frame.sha256.str.startswith(name)]
    if base.empty:
        raise ModelError(f"no model {name!r} in the store; bench compress records a family")
    return str(base.path.iloc[0]), family(store, str(base.sha256.iloc[0]))


def family_bases(store: Store) -> pandas.DataFrame:
    """Every model that is no one's variant (``name``, ``sha256``) with the number of models
    in its family (``members``, itself included), the largest families first."""
    frame = models_frame(store)
    children = frame.groupby("parent_sha256")["sha256"].apply(list).to_dict()
    rows = []
    for row in frame[frame.parent_sha256.isna()].itertuples():
        members, todo = 0, [str(row.sha256)]
        while todo:
            members += 1
            todo += children.pop(todo.pop(), [])
        rows.append({"name": str(row.name), "sha256": str(row.sha256), "members": members})
    found = pandas.DataFrame(rows, columns=["name", "sha256", "members"])
    return found.sort_values(["members", "name"], ascending=[False, True], kind="stable",
                             ignore_index=True)
