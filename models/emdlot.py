"""EMDLOT (Lu, Ling, Wang, Xu 2025, section 3) and its ablations ABL1–ABL3 and text-only.

Financial and macro features -> per-feature value embeddings -> feature attention per quarter
(eqs 12–13) -> T-LSTM over the attended quarters (eqs 1–8) -> numeric embedding; text sections
-> per-section encoders -> chapter attention (eqs 10–11) -> text embedding; modality attention
(eqs 14–15) -> soft clustering mixture of K heads (eq 9); loss CE + λ_dist·L_dist + λ_clus·L_clus
(eqs 16–19); K-Means centroid init and a supervised warm-up of the cluster network (3.5).
The ablations are parameter overrides of the same adapter. Decisions where the paper is silent
or contradicts itself are listed in ``docs/emdlot.md``; ``paper_literal=True`` reproduces
eqs 18–19 as printed.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits
from torch import Tensor, nn

from bench.models._layers import (
    EVAL_BATCH,
    AdditiveAttention,
    MeanPool,
    ModalityAttention,
    ModuleOutput,
    SeqBatch,
    SequenceClassifier,
    TimeAwareLSTM,
    TorchAdapter,
    adam,
    minibatches,
    suggest_training,
)
from bench.registry import register, register_variant
from bench.views import SequenceView

SEPARATION_EPS = 1e-3  # keeps eq 19's inverse distance finite if two centroids meet


def distribution_loss(pi: Tensor, literal: bool = False) -> Tensor:
    """Eq 18 on the batch-mean assignment ``π̄`` (``pi`` [B, K]).

    Eq 18 prints ``L_dist = H(π̄)/log K`` (the normalised entropy); minimising it drives usage
    toward a single cluster, while the text says the term should make usage uniform. Default:
    ``1 - H(π̄)/log K`` (maximise entropy); ``literal``: ``+H(π̄)/log K`` as printed.
    """
    k = pi.shape[-1]
    if k < 2:
        return pi.new_zeros(())
    mean = pi.mean(0)
    entropy = -(mean * mean.clamp_min(1e-12).log()).sum() / math.log(k)
    return entropy if literal else 1.0 - entropy


def separation_loss(centroids: Tensor, literal: bool = False) -> Tensor:
    """Eq 19 on the mean pairwise Euclidean distance ``d̄`` of the centroids [K, d].

    The text says the term "penalizes the inverse of the average pairwise distance"; eq 19
    prints ``-d̄``, which is unbounded below and lets the centroids run away. Default:
    ``1 / (d̄ + ε)``; ``literal``: ``-d̄``.
    """
    if centroids.shape[0] < 2:
        return centroids.new_zeros(())
    mean = torch.pdist(centroids).mean()
    return -mean if literal else 1.0 / (mean + SEPARATION_EPS)


class FeatureGroup(nn.Module):
    """One group of numeric features (financial or macro), attended per firm and quarter.

    Feature ``i``'s value is embedded by its own vector, ``f_i = x_i·e_i + b_i`` (the paper's
    encoded feature ``f_i``), so the attention score ``wᵀ tanh(f_i)`` depends on both which
    feature it is and its value; ``Σ α_i f_i`` is that quarter's input to the T-LSTM.
    """

    def __init__(self, n_features: int, dim: int, pool: nn.Module) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_features, dim))  # e_i, initialised like nn.Embedding
        self.bias = nn.Parameter(torch.randn(n_features, dim))  # b_i: the feature's identity at x = 0
        self.pool = pool

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """``x`` [B,T,n] -> (pooled [B,T,dim], weights [B,T,n] or None without attention)."""
        return self.pool(x.unsqueeze(-1) * self.weight + self.bias)


class ChapterEncoder(nn.Module):
    """Each text section's embedding through its own projection: the chapter embeddings ``h_j``.

    ``tanh`` bounds them like the T-LSTM's hidden state, so modality attention compares
    embeddings of the same scale.
    """

    def __init__(self, n_sections: int, in_dim: int, dim: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)
        self.weight = nn.Parameter(torch.empty(n_sections, in_dim, dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n_sections, dim).uniform_(-bound, bound))

    def forward(self, text: Tensor) -> Tensor:
        """``text`` [B,S,E] -> [B,S,dim]."""
        return torch.tanh(torch.einsum("bse,sed->bsd", text, self.weight) + self.bias)


class SoftClusterHead(nn.Module):
    """Eq 9: ``ŷ = Σ_k π_k P(c_k)`` with ``π = softmax(logits)`` and K independent linear heads.

    ``centroid_logits`` decides how the learnable centroids enter ``π`` (the paper never says):

    * ``"distance"`` (default): ``logits_k = f_cluster(z)_k - ||z - c_k||² / s``, where ``s`` is
      the mean squared distance of the initial encoder outputs to their K-Means centre (set by
      :meth:`init_centroids`; 1 before that), so the distance term is O(1) at any width;
    * ``"mlp_only"``: ``logits = f_cluster(z)``, the text as written; the centroids then shape
      only the separation loss and never the prediction.
    """

    def __init__(self, dim: int, n_classes: int, k: int, centroid_logits: str) -> None:
        super().__init__()
        if centroid_logits not in ("distance", "mlp_only"):
            raise ValueError(f"centroid_logits must be 'distance' or 'mlp_only', got {centroid_logits!r}")
        self.centroid_logits = centroid_logits
        self.cluster_net = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, k))  # f_cluster
        self.centroids = nn.Parameter(torch.randn(k, dim) * 0.1)
        self.register_buffer("distance_scale", torch.ones(()))
        bound = 1.0 / math.sqrt(dim)
        self.weight = nn.Parameter(torch.empty(k, dim, n_classes).uniform_(-bound, bound))  # P(c_k)
        self.bias = nn.Parameter(torch.empty(k, n_classes).uniform_(-bound, bound))

    @torch.no_grad()
    def init_centroids(self, centres: Tensor, mean_sq_distance: float) -> None:
        self.centroids.copy_(centres)
        self.distance_scale.fill_(max(mean_sq_distance, 1e-6))

    def cluster_logits(self, z: Tensor) -> Tensor:
        logits = self.cluster_net(z)
        if self.centroid_logits == "distance":
            logits = logits - torch.cdist(z, self.centroids).square() / self.distance_scale
        return logits

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``z`` [B,d] -> (log ŷ [B,C], log π [B,K]); the mixture is taken in log space."""
        log_pi = F.log_softmax(self.cluster_logits(z), dim=-1)
        log_heads = F.log_softmax(torch.einsum("bd,kdc->bkc", z, self.weight) + self.bias, dim=-1)
        return torch.logsumexp(log_pi.unsqueeze(-1) + log_heads, dim=1), log_pi


class EMDLOTNet(SequenceClassifier):
    """The EMDLOT network; the ``use_*`` switches remove whole parts (and their parameters)."""

    def __init__(self, *, n_financial: int, n_macro: int, n_sections: int, text_dim: int, n_classes: int,
                 hidden_size: int, feature_dim: int, dropout: float, num_clusters: int,
                 cluster_loss_weight: float, dist_loss_weight: float, modal_temperature: float,
                 numeric_feature_temperature: float, text_feature_temperature: float,
                 use_numeric: bool, use_text: bool, use_attention: bool, use_clustering: bool,
                 centroid_logits: str, paper_literal: bool) -> None:
        super().__init__()

        def pool(dim: int, temperature: float) -> nn.Module:
            return AdditiveAttention(dim, temperature) if use_attention else MeanPool()

        self.n_financial = n_financial
        self.financial = self.macro = self.encoder = None
        self.chapters = self.chapter_pool = self.modality = None
        if use_numeric:
            groups = [n for n in (n_financial, n_macro) if n]
            if n_financial:
                self.financial = FeatureGroup(n_financial, feature_dim, pool(feature_dim, numeric_feature_temperature))
            if n_macro:
                self.macro = FeatureGroup(n_macro, feature_dim, pool(feature_dim, numeric_feature_temperature))
            self.encoder = TimeAwareLSTM(feature_dim * len(groups), hidden_size)
        if use_text:
            self.chapters = ChapterEncoder(n_sections, text_dim, hidden_size)
            self.chapter_pool = pool(hidden_size, text_feature_temperature)
        if use_numeric and use_text:
            self.modality = ModalityAttention(hidden_size, 2, modal_temperature) if use_attention else MeanPool()
        self.dropout = nn.Dropout(dropout)
        if use_clustering:
            self.head = SoftClusterHead(hidden_size, n_classes, num_clusters, centroid_logits)
            self.classifier = None
        else:
            self.head = None
            self.classifier = nn.Linear(hidden_size, n_classes)
        self.loss_weights = (dist_loss_weight, cluster_loss_weight)
        self.paper_literal = paper_literal

    def embed(self, batch: SeqBatch) -> tuple[Tensor, dict[str, Tensor]]:
        """The fused embedding ``z_fusion`` [B, hidden] and the attention weights that made it.

        Feature weights are [B,T,n_group], zero at padded quarters (which the T-LSTM skips).
        """
        parts, weights = [], {}
        if self.encoder is not None:
            steps = []
            for key, group, x in (("feature_financial", self.financial, batch.x[..., : self.n_financial]),
                                  ("feature_macro", self.macro, batch.x[..., self.n_financial:])):
                if group is None:
                    continue
                pooled, alpha = group(x)
                steps.append(pooled)
                if alpha is not None:
                    weights[key] = alpha * batch.mask.unsqueeze(-1)
            parts.append(self.encoder(torch.cat(steps, -1), batch.dt, batch.mask))
        if self.chapters is not None:
            z_text, alpha = self.chapter_pool(self.chapters(batch.text))
            parts.append(z_text)
            if alpha is not None:
                weights["chapter"] = alpha
        if self.modality is not None:
            z, beta = self.modality(torch.stack(parts, 1))  # order: numeric, text
            if beta is not None:
                weights["modality"] = beta
        else:
            z = parts[0]
        return z, weights

    def forward(self, batch: SeqBatch) -> ModuleOutput:
        z, weights = self.embed(batch)
        z = self.dropout(z)
        if self.head is None:
            return ModuleOutput(F.log_softmax(self.classifier(z), dim=-1), weights=weights)
        log_proba, log_pi = self.head(z)
        pi = log_pi.exp()
        weights["cluster"] = pi
        aux = None
        if self.training:
            w_dist, w_clus = self.loss_weights
            aux = (w_dist * distribution_loss(pi, self.paper_literal)
                   + w_clus * separation_loss(self.head.centroids, self.paper_literal))
        return ModuleOutput(log_proba, aux, weights)


@register(groups=("all", "deep"), order=90)
class EMDLOT(TorchAdapter):
    """EMDLOT with the paper's Table 5 defaults.

    ``explain(view)`` returns (absent when the variant removes that part):
    ``feature_financial`` [N,T,n_financial] and ``feature_macro`` [N,T,n_macro] (sum to 1 over
    features at real quarters, 0 at padding), ``chapter`` [N,S], ``modality`` [N,2] (numeric,
    text) and ``cluster`` [N,K] (the assignment π).
    """

    name = "emdlot"
    display_name = "EMDLOT"
    default_params: dict[str, Any] = {
        "hidden_size": 512,
        "dropout": 0.3,
        "learning_rate": 0.0006175651418191845,
        "weight_decay": 1.0162398945608497e-06,
        "num_clusters": 8,
        "cluster_loss_weight": 0.004,
        "dist_loss_weight": 0.035,
        "modal_temperature": 2.6,
        "numeric_feature_temperature": 0.9,
        "text_feature_temperature": 0.55,
        "patience": 13,
        "batch_size": 8,
        "max_epochs": 100,
        "warmup_epochs": 10,
        "feature_dim": 64,
        "use_numeric": True,
        "use_text": True,
        "use_attention": True,
        "use_clustering": True,
        "centroid_logits": "distance",
        "paper_literal": False,
    }
    profiles = {
        "quick": {"hidden_size": 32, "feature_dim": 16, "max_epochs": 5, "patience": 2, "batch_size": 64,
                  "warmup_epochs": 2},
        "paper": {},
    }

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        """Table 5's ranges (the temperatures' "0.5 to 0.99, step 0.05" grid ends at 0.95)."""
        return {
            **suggest_training(trial),
            "hidden_size": trial.suggest_categorical("hidden_size", [256, 512, 768, 1024]),
            "num_clusters": trial.suggest_int("num_clusters", 2, 8),
            "cluster_loss_weight": trial.suggest_float("cluster_loss_weight", 0.0005, 0.005, step=0.0005),
            "dist_loss_weight": trial.suggest_float("dist_loss_weight", 0.02, 0.08, step=0.005),
            "modal_temperature": trial.suggest_float("modal_temperature", 1.0, 3.0, step=0.1),
            "numeric_feature_temperature": trial.suggest_float("numeric_feature_temperature", 0.5, 0.95, step=0.05),
            "text_feature_temperature": trial.suggest_float("text_feature_temperature", 0.5, 0.95, step=0.05),
        }

    def build_module(self, train: SequenceView) -> EMDLOTNet:
        p = self.params
        has_text = p["use_text"] and train.text.shape[1] > 0  # a panel without text runs as ABL1
        if not (p["use_numeric"] or has_text):
            raise ValueError(f"model '{self.name}': no input left (use_numeric=False and the view has no text)")
        return EMDLOTNet(
            n_financial=train.n_financial, n_macro=train.X.shape[2] - train.n_financial,
            n_sections=train.text.shape[1], text_dim=train.text.shape[2], n_classes=len(train.class_names),
            hidden_size=p["hidden_size"], feature_dim=p["feature_dim"], dropout=p["dropout"],
            num_clusters=p["num_clusters"], cluster_loss_weight=p["cluster_loss_weight"],
            dist_loss_weight=p["dist_loss_weight"], modal_temperature=p["modal_temperature"],
            numeric_feature_temperature=p["numeric_feature_temperature"],
            text_feature_temperature=p["text_feature_temperature"], use_numeric=p["use_numeric"],
            use_text=has_text, use_attention=p["use_attention"], use_clustering=p["use_clustering"],
            centroid_logits=p["centroid_logits"], paper_literal=p["paper_literal"],
        )

    def warm_start(self, module: EMDLOTNet, data: SeqBatch, generator: torch.Generator) -> None:
        """Section 3.5: K-Means on the initial encoder outputs sets the centroids, then the cluster
        network alone is trained for ``warmup_epochs`` to predict the K-Means labels."""
        head = module.head
        if head is None or head.centroids.shape[0] < 2:
            return
        k = head.centroids.shape[0]
        with torch.no_grad():
            module.eval()
            z = torch.cat([module.embed(b)[0] for b in data.batches(EVAL_BATCH)])
        with threadpool_limits(limits=1):  # its sums depend on the thread count: keep it machine-independent
            km = KMeans(n_clusters=k, n_init=10, random_state=self.seed).fit(z.cpu().numpy())
        head.init_centroids(torch.as_tensor(km.cluster_centers_, dtype=z.dtype), km.inertia_ / len(z))
        labels = torch.as_tensor(km.labels_, dtype=torch.long, device=z.device)
        optimizer = adam(head.cluster_net.parameters(), self.params["learning_rate"])
        head.train()
        for _ in range(self.params["warmup_epochs"]):
            for idx in minibatches(len(z), self.params["batch_size"], generator, z.device):
                loss = F.cross_entropy(head.cluster_logits(z[idx]), labels[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()


register_variant("abl1", parent=EMDLOT, display_name="ABL1", overrides={"use_text": False},
                 groups=("all", "ablations"), order=100)
register_variant("abl2", parent=EMDLOT, display_name="ABL2", overrides={"use_clustering": False},
                 groups=("all", "ablations"), order=101)
register_variant("abl3", parent=EMDLOT, display_name="ABL3", overrides={"use_attention": False},
                 groups=("all", "ablations"), order=102)
register_variant("textonly", parent=EMDLOT, display_name="Text-only", overrides={"use_numeric": False},
                 groups=("ablations",), order=103)
