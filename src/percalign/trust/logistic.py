"""Many weighted, L2-penalized logistic regressions at once (Newton's method in numpy).

The trust analysis refits its cross-validated models on every bootstrap resample, a few
thousand small fits per source; one batched Newton solve does them together. Each fit is the
model scikit-learn's ``make_pipeline(StandardScaler(), LogisticRegression())`` fits with
``sample_weight`` (features scaled to weighted mean 0 and SD 1 on the fit's own rows, penalty
``0.5 * |coef|^2`` with ``C = 1``, intercept not penalized); ``tests/trust`` checks it
against scikit-learn.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit as _sigmoid

__all__ = ["fit_predict"]

#: Newton iterations at most; the penalized problem converges in well under this
MAX_ITER = 50
TOL = 1e-10


def fit_predict(
    x: np.ndarray, y: np.ndarray, weights: np.ndarray, penalty: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Fit one weighted logistic regression per row of ``weights``; predict every row of ``x``.

    Args:
        x: (F, n, p) features of each fit (or (n, p), shared by every fit).
        y: (n,) 0/1 outcomes.
        weights: (F, n) non-negative row weights (0: not in that fit; k: k copies).
        penalty: L2 penalty on the coefficients of the standardized features (1 / C).

    Returns:
        ``(probability, coef)``: (F, n) predicted chance of y = 1 for every row, and (F, p)
        coefficients of the standardized features. A fit whose weighted rows are all 1 (or
        all 0) predicts that constant, with zero coefficients.
    """
    w = np.asarray(weights, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    feats = np.broadcast_to(np.asarray(x, dtype=np.float64), (w.shape[0], *np.shape(x)[-2:]))
    total = w.sum(axis=1)
    share = (w @ y) / np.where(total > 0, total, 1.0)
    safe = np.where(total > 0, total, 1.0)[:, None]
    mean = (w[:, None, :] @ feats)[:, 0] / safe
    centred = feats - mean[:, None, :]
    sd = np.sqrt((w[:, None, :] @ centred**2)[:, 0] / safe)
    scaled = centred / np.where(sd > 0, sd, 1.0)[:, None, :]
    design = np.concatenate([np.ones((*scaled.shape[:2], 1)), scaled], axis=2)
    fits, _, k = design.shape
    ridge = penalty * np.eye(k)
    ridge[0, 0] = 0.0
    beta = np.zeros((fits, k))
    # start the intercept at the weighted log-odds: Newton from there needs few steps
    ok = (share > 0) & (share < 1)
    beta[ok, 0] = np.log(share[ok] / (1 - share[ok]))
    active = ok.copy()
    for _ in range(MAX_ITER):
        if not active.any():
            break
        d, b, wa = design[active], beta[active], w[active]
        prob = _sigmoid((d @ b[..., None])[..., 0])
        dt = d.transpose(0, 2, 1)
        grad = (dt @ (wa * (y - prob))[..., None])[..., 0] - b @ ridge
        hess = (dt * (wa * prob * (1 - prob))[:, None, :]) @ d + ridge
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        beta[active] = b + step
        moved = np.abs(step).max(axis=1) > TOL
        active[np.flatnonzero(active)[~moved]] = False
    probability = np.where(
        ok[:, None], _sigmoid((design @ beta[..., None])[..., 0]), share[:, None]
    )
    coef = np.where(ok[:, None], beta[:, 1:], 0.0)
    return probability, coef
