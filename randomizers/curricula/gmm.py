"""Gaussian mixture models fitted by expectation-maximization in numpy (full covariances), chosen by AIC."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass
class GMM:
    """A fitted mixture: ``weights`` (K,), ``means`` (K, D), ``covs`` (K, D, D)."""

    weights: np.ndarray
    means: np.ndarray
    covs: np.ndarray
    log_likelihood: float = float("nan")

    @property
    def k(self) -> int:
        return len(self.weights)

    def n_parameters(self) -> int:
        k, d = self.means.shape
        return k * d + k * d * (d + 1) // 2 + k - 1

    def aic(self) -> float:
        """Akaike information criterion: 2 p - 2 log L (lower is better)."""
        return 2.0 * self.n_parameters() - 2.0 * self.log_likelihood

    def log_resp(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(log p(x_n, k) (N, K), log p(x_n) (N,))."""
        joint = np.log(self.weights)[None, :] + np.stack(
            [_log_gauss(x, m, c) for m, c in zip(self.means, self.covs)], axis=1)
        top = joint.max(axis=1, keepdims=True)
        return joint, (top + np.log(np.exp(joint - top).sum(axis=1, keepdims=True)))[:, 0]

    def to_dict(self) -> dict[str, Any]:
        return {"weights": self.weights.tolist(), "means": self.means.tolist(), "covs": self.covs.tolist(),
                "log_likelihood": self.log_likelihood}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GMM:
        return cls(np.asarray(data["weights"], float), np.asarray(data["means"], float),
                   np.asarray(data["covs"], float), float(data["log_likelihood"]))


def _log_gauss(x: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    chol = np.linalg.cholesky(cov)
    z = np.linalg.solve(chol, (x - mean).T)
    return -0.5 * (np.sum(z * z, axis=0) + x.shape[1] * _LOG_2PI) - np.sum(np.log(np.diag(chol)))


def fit_gmm(x: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 100, tol: float = 1e-4,
            reg: float = 1e-6) -> GMM:
    """EM for a K-component full-covariance mixture on ``x`` (N, D); k-means++ seeding; ``reg`` added to diagonals."""
    n, d = x.shape
    if not 1 <= k <= n:
        raise ValueError(f"cannot fit {k} components to {n} points")
    centers = [x[int(rng.integers(n))]]
    for _ in range(1, k):
        dist = np.min(((x[:, None, :] - np.asarray(centers)[None]) ** 2).sum(-1), axis=1)
        total = dist.sum()
        centers.append(x[int(rng.choice(n, p=dist / total))] if total > 0 else x[int(rng.integers(n))])
    var = np.var(x, axis=0).mean() + reg
    gmm = GMM(np.full(k, 1.0 / k), np.asarray(centers, float), np.repeat(np.eye(d)[None] * var, k, axis=0))
    previous = -np.inf
    for _ in range(iterations):
        joint, total = gmm.log_resp(x)
        resp = np.exp(joint - total[:, None])
        nk = resp.sum(axis=0) + 10 * np.finfo(float).eps
        means = resp.T @ x / nk[:, None]
        covs = np.empty((k, d, d))
        for j in range(k):
            diff = x - means[j]
            covs[j] = (resp[:, j, None] * diff).T @ diff / nk[j] + reg * np.eye(d)
        gmm = GMM(nk / n, means, covs)
        ll = float(total.sum())
        if ll - previous < tol * max(1.0, abs(ll)):
            break
        previous = ll
    gmm.log_likelihood = float(gmm.log_resp(x)[1].sum())
    return gmm


def best_gmm_by_aic(x: np.ndarray, ks: Sequence[int], rng: np.random.Generator) -> GMM:
    """The mixture with the lowest AIC among ``ks`` components (values above N are skipped)."""
    fits = [fit_gmm(x, k, rng) for k in ks if k <= len(x)]
    if not fits:
        raise ValueError(f"no component count in {list(ks)} fits {len(x)} points")
    return min(fits, key=GMM.aic)
