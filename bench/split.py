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


def split_entities(y: np.ndarray, protocol: Protocol, seed: int, class_names: tuple[str, ...] = ()) -> Split:
    """Stratified 80/20 entity split, then a stratified validation slice of the training part."""
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
    train, test = train_test_split(idx, test_size=protocol.test_size, stratify=y, random_state=seed)
    valid = np.array([], dtype=int)
    if protocol.valid_size > 0:
        train, valid = train_test_split(train, test_size=protocol.valid_size, stratify=y[train], random_state=seed)
    return Split(train=np.sort(train), valid=np.sort(valid), test=np.sort(test))
