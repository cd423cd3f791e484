"""Deep baselines of the paper's Table 6: a masked LSTM and an ANN (MLP on the flat sequence view).

Both train with the loop of :class:`~bench.models._layers.TorchAdapter` (early stopping on the
validation composite, like EMDLOT), and both see the text embeddings the tabular models see.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.models._layers import (
    ModuleOutput,
    SeqBatch,
    SequenceClassifier,
    TimeAwareLSTM,
    TorchAdapter,
    suggest_training,
)
from bench.registry import register
from bench.views import SequenceView

QUICK = {"hidden_size": 32, "max_epochs": 5, "patience": 2, "batch_size": 64}


class LSTMNet(SequenceClassifier):
    """Masked LSTM over the quarters; its state after the last real quarter (the last step,
    by end alignment), joined with the text embeddings, feeds a linear classifier.

    The recurrence is the T-LSTM kernel without the decay gate, so LSTM and EMDLOT share one
    masking rule. Against ``nn.LSTM`` over ``pack_padded_sequence`` (which needs each row shifted
    to the front first) it measured faster at batch 8, level at hidden 512, and up to 1.25x slower
    at batch 32 / hidden 128 (``docs/emdlot.md``); not worth a second recurrent code path.
    """

    def __init__(self, n_features: int, n_text: int, hidden_size: int, dropout: float, n_classes: int) -> None:
        super().__init__()
        self.encoder = TimeAwareLSTM(n_features, hidden_size, decay=False)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size + n_text, n_classes)

    def forward(self, batch: SeqBatch) -> ModuleOutput:
        h = self.encoder(batch.x, batch.dt, batch.mask)
        z = torch.cat([h, batch.text.flatten(1)], dim=1)
        return ModuleOutput(F.log_softmax(self.classifier(self.dropout(z)), dim=-1))


class ANNNet(SequenceClassifier):
    """MLP on ``[X·mask flattened, Δt, text flattened]``; padding contributes exact zeros."""

    def __init__(self, n_inputs: int, hidden_size: int, num_layers: int, dropout: float, n_classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(num_layers):
            layers += [nn.Linear(n_inputs if i == 0 else hidden_size, hidden_size), nn.ReLU(), nn.Dropout(dropout)]
        self.mlp = nn.Sequential(*layers, nn.Linear(hidden_size if num_layers else n_inputs, n_classes))

    def forward(self, batch: SeqBatch) -> ModuleOutput:
        flat = torch.cat([(batch.x * batch.mask.unsqueeze(-1)).flatten(1), batch.dt, batch.text.flatten(1)], dim=1)
        return ModuleOutput(F.log_softmax(self.mlp(flat), dim=-1))


def _text_size(view: SequenceView) -> int:
    return view.text.shape[1] * view.text.shape[2]


@register(groups=("all", "deep"), order=80)
class LSTM(TorchAdapter):
    name = "lstm"
    display_name = "LSTM"
    default_params: dict[str, Any] = {
        "hidden_size": 128, "dropout": 0.3, "learning_rate": 1e-3, "weight_decay": 1e-5,
        "batch_size": 32, "patience": 13, "max_epochs": 100,
    }
    profiles = {"quick": QUICK, "paper": {}}

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        return {**suggest_training(trial), "hidden_size": trial.suggest_categorical("hidden_size", [64, 128, 256, 512])}

    def build_module(self, train: SequenceView) -> LSTMNet:
        p = self.params
        return LSTMNet(train.X.shape[2], _text_size(train), p["hidden_size"], p["dropout"], len(train.class_names))


@register(groups=("all", "deep"), order=70)
class ANN(TorchAdapter):
    name = "ann"
    display_name = "ANN"
    default_params: dict[str, Any] = {
        "hidden_size": 256, "num_layers": 2, "dropout": 0.3, "learning_rate": 1e-3, "weight_decay": 1e-5,
        "batch_size": 32, "patience": 13, "max_epochs": 100,
    }
    profiles = {"quick": QUICK, "paper": {}}

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        return {
            **suggest_training(trial),
            "hidden_size": trial.suggest_categorical("hidden_size", [64, 128, 256, 512]),
            "num_layers": trial.suggest_int("num_layers", 1, 3),
        }

    def build_module(self, train: SequenceView) -> ANNNet:
        p = self.params
        _, t, d = train.X.shape
        n_inputs = t * d + t + _text_size(train)
        return ANNNet(n_inputs, p["hidden_size"], p["num_layers"], p["dropout"], len(train.class_names))
