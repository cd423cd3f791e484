"""Entity-level splits: the test part is touched once, the validation slice serves early stopping and tuning."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

from bench.protocol import Protocol


class SplitError(ValueError):
    pass


@dataclass(frozen=True)
class Split:
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray


def split_entities(y: np.ndarray, protocol: Protocol, seed: int, class_names: tuple[str, ...] = (),
                   outcome_month: np.ndarray | None = None) -> Split:
    """Stratified 80/20 entity split, then a stratified validation slice of the training part.

    With ``split.kind = "temporal"`` the test part is every entity whose outcome becomes
    known after a cut-off month (chosen so the test share is about ``test_size``); seeds
    then vary only the validation slice and the models.
    """
    counts = np.bincount(y)
    need = 3 if protocol.valid_size > 0 else 2
    small = np.flatnonzero(counts < need)
    if len(small):
        c = int(small[0])
        name = class_names[c] if class_names else str(c)
        raise SplitError(
            f"class '{name}' has {counts[c]} entities; protocol '{protocol.name}' needs at least {need} "
            "(train, validation and test each need one)"
        )
    idx = np.arange(len(y))
    if protocol.split_kind == "temporal":
        train, test = _temporal(y, protocol, outcome_month, class_names)
    else:
        train, test = train_test_split(idx, test_size=protocol.test_size, stratify=y, random_state=seed)
    valid = np.array([], dtype=int)
    if protocol.valid_size > 0:
        train, valid = train_test_split(train, test_size=protocol.valid_size, stratify=y[train], random_state=seed)
    return Split(train=np.sort(train), valid=np.sort(valid), test=np.sort(test))


def _temporal(y: np.ndarray, protocol: Protocol, outcome_month: np.ndarray | None,
              class_names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    if outcome_month is None:
        raise SplitError(f"protocol '{protocol.name}': a temporal split needs each entity's outcome date")
    cutoff = np.quantile(outcome_month, 1 - protocol.test_size, method="lower")
    test = np.flatnonzero(outcome_month > cutoff)
    train = np.flatnonzero(outcome_month <= cutoff)
    year, month = divmod(int(cutoff), 12)
    for part, name in ((train, "before"), (test, "after")):
        counts = np.bincount(y[part], minlength=int(y.max()) + 1)
        if (counts == 0).any():
            c = int(np.flatnonzero(counts == 0)[0])
            label = class_names[c] if class_names else str(c)
            raise SplitError(
                f"protocol '{protocol.name}': no '{label}' entity has its outcome {name} the cut-off "
                f"{year}-{month + 1:02d}"
                + ("; under the paper's alignment performing firms all end with the data (add '+matched' to the "
                   "protocol)" if protocol.alignment == "paper" else "")
            )
    return train, test
