"""Firth's penalized logistic regression, written independently of cohortdb for its tests.

Dense double precision with numpy: the root of Firth's modified score
U* = X'(y - p + h (1/2 - p)) (h the hat matrix's diagonal; Heinze & Schemper 2002), found by
logistf's steps (Fisher scoring, halved until the penalized likelihood does not fall), then
half steps to |U*| < 1e-8; the standard error is the square root of the
inverse Fisher information's last diagonal entry (Wald).

usage: firth_reference.py DESIGN.tsv
DESIGN.tsv: one row per sample, tab-separated: y, covariates..., then the dosage.
Prints: beta se
"""

import sys

import numpy as np


def fit(y, x):
    def state(b):
        p = 1.0 / (1.0 + np.exp(-(x @ b)))
        w = p * (1.0 - p)
        information = x.T @ (x * w[:, None])
        inverse = np.linalg.inv(information)
        h = w * np.einsum("ij,jk,ik->i", x, inverse, x)
        score = x.T @ (y - p + h * (0.5 - p))
        loglik = np.sum(y * np.log(p) + (1 - y) * np.log(1 - p))
        return score, inverse, loglik + 0.5 * np.linalg.slogdet(information)[1]

    # Near the optimum: logistf's steps, halved until the penalized likelihood does not fall.
    beta = np.zeros(x.shape[1])
    score, inverse, loglik = state(beta)
    for _ in range(40):
        step = inverse @ score
        biggest = np.max(np.abs(step))
        if biggest > 5:
            step *= 5 / biggest
        scale = 1.0
        while True:
            trial = state(beta + scale * step)
            if trial[2] >= loglik or scale < 2**-10:
                break
            scale /= 2
        beta = beta + scale * step
        score, inverse, loglik = trial
    # To the root: half steps, which converge where full ones alternate around it.
    for _ in range(200):
        beta = beta + 0.5 * (inverse @ score)
        score, inverse, _ = state(beta)
    if np.max(np.abs(score)) > 1e-8:
        sys.exit(f"no convergence: |U*| = {np.max(np.abs(score))}")
    return beta[-1], np.sqrt(inverse[-1, -1])


def main():
    data = np.loadtxt(sys.argv[1], delimiter="\t", ndmin=2)
    y = data[:, 0]
    x = np.column_stack([np.ones(len(y)), data[:, 1:]])
    beta, se = fit(y, x)
    print(f"{float(beta)!r} {float(se)!r}")


if __name__ == "__main__":
    main()
