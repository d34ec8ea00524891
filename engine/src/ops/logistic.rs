//! Logistic regression of a 0/1 trait on ALT dosage with covariates, as `plink2 --glm` fits it
//! (its default `firth-fallback`): maximum likelihood by Newton's method, and Firth's
//! penalized likelihood (logistf's, with Wald statistics) where the plain fit cannot exist.
//!
//! - **Separation.** When every ALT copy is in a case, or every one in a control, the
//!   likelihood has no maximum; as plink2 does, the plain fit is not tried.
//! - **Fallback.** Separation, or a plain fit that does not converge, falls back to Firth's
//!   fit (`firth` true), or without the fallback is reported by its [`Fit::error`] code
//!   (plink2's `ERRCODE`: `SEPARATION`, `LOGISTIC_CONVERGE_FAIL`, ...).
//!
//! Speed (hand-written, measured in `benches/assoc/run.sh`): every pass over the samples is
//! column by column over contiguous arrays, with four partial sums per dot product so that it
//! vectorises; the dosage column is sparse (carriers only) and never stored densely; each fit
//! starts from the covariates-only fit. At N=10,000 this took a 1 Mb region from 52 s to the
//! figures in `benches/assoc/results-2026-12-07.md`.

use crate::ops::association_stats::erfc;
use crate::ops::regression::{Fit, cholesky_solve, code, symmetric_inverse};

/// Outcome of one iterative fit.
enum Outcome {
    /// Converged: coefficients and the diagonal of their covariance.
    Converged(Vec<f64>, Vec<f64>),
    /// The iteration limit was hit: the last coefficients and covariance diagonal.
    Unfinished(Vec<f64>, Vec<f64>),
    Failed,
}

/// A logistic model's covariate part over fixed samples, ready for many variants.
pub struct LogisticModel {
    y: Vec<f64>,
    /// Intercept, then the covariates (each centred: the dosage's coefficient is unchanged,
    /// and the sums are better conditioned).
    columns: Vec<Vec<f64>>,
    /// The covariates-only fit, where every variant's fit starts.
    null: Vec<f64>,
    /// The null fit's probabilities, and its information and score over the covariates:
    /// a variant's first Newton step (dosage coefficient 0) changes only the carriers' terms.
    null_p: Vec<f64>,
    null_information: Vec<f64>,
    null_score: Vec<f64>,
    /// Whether separated or non-converging variants get Firth's fit.
    firth_fallback: bool,
}

impl LogisticModel {
    /// The model of 0/1 `y` on `covariates` (an intercept is added); all of length n.
    pub fn new(y: &[f64], covariates: &[Vec<f64>], firth_fallback: bool) -> Self {
        let n = y.len();
        let mut columns = vec![vec![1.0; n]];
        for c in covariates {
            let mean = c.iter().sum::<f64>() / n.max(1) as f64;
            columns.push(c.iter().map(|v| v - mean).collect());
        }
        let mut model = Self {
            y: y.to_vec(),
            columns,
            null: Vec::new(),
            null_p: Vec::new(),
            null_information: Vec::new(),
            null_score: Vec::new(),
            firth_fallback,
        };
        let start = vec![0.0; model.columns.len()];
        model.null = match model.newton(&[], start) {
            Outcome::Converged(beta, _) | Outcome::Unfinished(beta, _) => beta,
            Outcome::Failed => vec![0.0; model.columns.len()],
        };
        let mut state = State::new(&model);
        state.set_coefficients(&model, &[], &model.null);
        (model.null_information, model.null_score) = state.fisher_information(&model, &[]);
        model.null_p = state.p;
        model
    }

    /// The fit for a variant whose non-zero dosages are `carriers` (row, dosage, rows
    /// ascending); every other sample has dosage 0.
    pub fn fit_sparse(&self, carriers: &[(usize, f64)]) -> Fit {
        let n = self.y.len();
        let m = self.columns.len() + 1;
        if carriers.is_empty() {
            return Fit::failed(n, code::CONST_OMITTED_ALLELE);
        }
        let first = carriers[0].1;
        if carriers.len() == n && carriers.iter().all(|c| c.1 == first) {
            return Fit::failed(n, code::CONST_ALLELE);
        }
        if n <= m {
            return Fit::failed(n, code::SAMPLE_CT_LTE_COVAR_CT);
        }
        let total: f64 = carriers.iter().map(|c| c.1).sum();
        let in_cases: f64 = carriers.iter().map(|c| c.1 * self.y[c.0]).sum();
        let separated = in_cases == 0.0 || in_cases == total;
        let mut start = self.null.clone();
        start.push(0.0);
        if !separated {
            match self.newton(carriers, start.clone()) {
                Outcome::Converged(beta, var) => return self.wald(n, &beta, &var, false, None),
                Outcome::Unfinished(beta, var) => {
                    return self.wald(n, &beta, &var, false, Some(code::UNFINISHED));
                }
                Outcome::Failed if !self.firth_fallback => {
                    return Fit::failed(n, code::LOGISTIC_CONVERGE_FAIL);
                }
                Outcome::Failed => {}
            }
        } else if !self.firth_fallback {
            return Fit::failed(n, code::SEPARATION);
        }
        match self.firth(carriers, start) {
            Outcome::Converged(beta, var) => self.wald(n, &beta, &var, true, None),
            Outcome::Unfinished(beta, var) => {
                self.wald(n, &beta, &var, true, Some(code::UNFINISHED))
            }
            Outcome::Failed => Fit {
                firth: true,
                ..Fit::failed(n, code::FIRTH_CONVERGE_FAIL)
            },
        }
    }

    /// The dosage's coefficient with its Wald standard error and two-sided normal p.
    fn wald(
        &self,
        n: usize,
        beta: &[f64],
        var: &[f64],
        firth: bool,
        error: Option<&'static str>,
    ) -> Fit {
        let last = beta.len() - 1;
        let se = var[last].sqrt();
        let z = beta[last] / se;
        let p = erfc(z.abs() / std::f64::consts::SQRT_2);
        if !(beta[last].is_finite() && se.is_finite() && p.is_finite()) {
            return Fit {
                firth,
                ..Fit::failed(n, code::LOGISTIC_CONVERGE_FAIL)
            };
        }
        Fit {
            n,
            beta: beta[last],
            se,
            p,
            firth,
            error,
        }
    }

    /// Maximum likelihood by Newton's method from `beta`, with plink2's tests for divergence.
    /// Without carriers the model is the covariates-only one.
    fn newton(&self, carriers: &[(usize, f64)], mut beta: Vec<f64>) -> Outcome {
        let mut state = State::new(self);
        let mut min_step = f64::INFINITY;
        for iteration in 0..25 {
            let (hessian, gradient) = if iteration == 0
                && !carriers.is_empty()
                && beta[..beta.len() - 1] == self.null[..]
                && beta[beta.len() - 1] == 0.0
            {
                self.first_step_terms(carriers)
            } else {
                state.set_coefficients(self, carriers, &beta);
                state.fisher_information(self, carriers)
            };
            let Some((step, var)) = cholesky_solve(&hessian, &gradient, beta.len()) else {
                return Outcome::Failed;
            };
            let size: f64 = step.iter().map(|s| s.abs()).sum();
            beta.iter_mut().zip(&step).for_each(|(b, s)| *b += s);
            if !size.is_finite() {
                return Outcome::Failed;
            }
            min_step = min_step.min(size);
            if iteration > 3
                && ((size > 20.0 && size > 2.0 * min_step)
                    || (iteration > 6 && (1.0 - size).abs() < 1e-3))
            {
                return Outcome::Failed;
            }
            if size < 1e-8 {
                if beta.iter().any(|b| b.abs() > 6e4) {
                    return Outcome::Failed;
                }
                // The covariance at the optimum (the step there is negligible).
                return Outcome::Converged(beta, var);
            }
            if iteration == 24 {
                if beta.iter().any(|b| b.abs() > 8e3) {
                    return Outcome::Failed;
                }
                return Outcome::Unfinished(beta, var);
            }
        }
        Outcome::Failed
    }

    /// The information and score at the null fit with the dosage's coefficient 0: the
    /// covariates' part is the null fit's, and the dosage's is summed over the carriers.
    fn first_step_terms(&self, carriers: &[(usize, f64)]) -> (Vec<f64>, Vec<f64>) {
        let k = self.columns.len();
        let m = k + 1;
        let mut hessian = vec![0.0; m * m];
        for a in 0..k {
            hessian[a * m..a * m + k].copy_from_slice(&self.null_information[a * k..a * k + k]);
        }
        let mut gradient = self.null_score.clone();
        let (mut gg, mut gy) = (0.0, 0.0);
        for &(row, d) in carriers {
            let p = self.null_p[row];
            let w = p * (1.0 - p);
            gg += w * d * d;
            gy += d * (self.y[row] - p);
            for a in 0..k {
                hessian[k * m + a] += w * d * self.columns[a][row];
            }
        }
        for a in 0..k {
            hessian[a * m + k] = hessian[k * m + a];
        }
        hessian[k * m + k] = gg;
        gradient.push(gy);
        (hessian, gradient)
    }

    /// Firth's penalized maximum likelihood (logistf's Newton-Raphson with step halving, as
    /// plink2 2.00a3 ports it), from `beta`; the covariance is the inverse Fisher information
    /// at the estimate.
    fn firth(&self, carriers: &[(usize, f64)], mut beta: Vec<f64>) -> Outcome {
        let m = beta.len();
        let mut state = State::new(self);
        state.set_coefficients(self, carriers, &beta);
        let Some(mut inverse) = state.inverse_information(self, carriers) else {
            return Outcome::Failed;
        };
        let mut previous: Vec<f64> = vec![0.0; m];
        let diagonal = |inv: &[f64]| (0..m).map(|a| inv[a * m + a]).collect::<Vec<f64>>();
        for iteration in 0..25 {
            let score = state.firth_score(self, carriers, &inverse);
            let score_max = score.iter().fold(0.0f64, |a, s| a.max(s.abs()));
            let mut step: Vec<f64> = (0..m)
                .map(|a| (0..m).map(|b| inverse[a * m + b] * score[b]).sum())
                .collect();
            // The Fisher information is not the modified score's derivative: at a sample of
            // high leverage (a singleton carrier, h near 1) the step overshoots about twice
            // and alternates around the optimum once the likelihood is too flat to halve it.
            // A step that undoes most of the last one is halved instead.
            let undo: f64 = step.iter().zip(&previous).map(|(s, p)| (s + p).abs()).sum();
            let size: f64 = step.iter().map(|s| s.abs()).sum();
            if iteration > 0 && undo < 0.5 * size {
                step.iter_mut().for_each(|s| *s *= 0.5);
            }
            let mut step_max = step.iter().fold(0.0f64, |a, s| a.max(s.abs()));
            if step_max > 5.0 {
                step.iter_mut().for_each(|s| *s *= 5.0 / step_max);
                step_max = 5.0;
            }
            // Large steps are halved until the penalized likelihood does not fall (logistf's
            // search); near the optimum its change is below the sum's rounding, and the step
            // is taken as it is.
            let searching = step_max >= 1e-3;
            let old = if searching {
                state.penalized_loglik(self, &inverse)
            } else {
                0.0
            };
            let mut scale = 1.0;
            loop {
                let trial: Vec<f64> = beta.iter().zip(&step).map(|(b, s)| b + scale * s).collect();
                state.set_coefficients(self, carriers, &trial);
                let Some(next) = state.inverse_information(self, carriers) else {
                    return Outcome::Failed;
                };
                if !searching
                    || scale < 1.0 / 32.0
                    || state.penalized_loglik(self, &next) >= old - 1e-12
                {
                    previous = step.iter().map(|s| scale * s).collect();
                    beta = trial;
                    inverse = next;
                    break;
                }
                scale /= 2.0;
            }
            if !beta.iter().all(|b| b.is_finite()) {
                return Outcome::Failed;
            }
            if scale * step_max <= 1e-6 && score_max < 1e-6 {
                return Outcome::Converged(beta, diagonal(&inverse));
            }
            if iteration == 24 {
                return Outcome::Unfinished(beta, diagonal(&inverse));
            }
        }
        Outcome::Failed
    }
}

/// Per-sample values at the current coefficients.
struct State {
    /// Linear predictor, fitted probability, weight p(1-p).
    eta: Vec<f64>,
    p: Vec<f64>,
    w: Vec<f64>,
    /// Scratch of length n.
    scratch: Vec<f64>,
}

impl State {
    fn new(model: &LogisticModel) -> Self {
        let n = model.y.len();
        Self {
            eta: vec![0.0; n],
            p: vec![0.0; n],
            w: vec![0.0; n],
            scratch: vec![0.0; n],
        }
    }

    /// `eta`, `p` and `w` at `beta`: the covariates' coefficients, then the dosage's when
    /// there are carriers.
    fn set_coefficients(&mut self, model: &LogisticModel, carriers: &[(usize, f64)], beta: &[f64]) {
        self.eta.fill(0.0);
        for (column, b) in model.columns.iter().zip(beta) {
            self.eta
                .iter_mut()
                .zip(column)
                .for_each(|(e, x)| *e += b * x);
        }
        if let Some(b) = beta.get(model.columns.len()) {
            for &(row, d) in carriers {
                self.eta[row] += b * d;
            }
        }
        self.p
            .iter_mut()
            .zip(&self.eta)
            .for_each(|(p, e)| *p = 1.0 / (1.0 + (-e).exp()));
        self.w
            .iter_mut()
            .zip(&self.p)
            .for_each(|(w, p)| *w = p * (1.0 - p));
    }

    /// The Fisher information X'WX (m x m, row-major) and the score X'(y - p).
    fn fisher_information(
        &mut self,
        model: &LogisticModel,
        carriers: &[(usize, f64)],
    ) -> (Vec<f64>, Vec<f64>) {
        let k = model.columns.len();
        let m = if carriers.is_empty() { k } else { k + 1 };
        let mut hessian = vec![0.0; m * m];
        let mut gradient = vec![0.0; m];
        self.scratch
            .iter_mut()
            .zip(model.y.iter().zip(&self.p))
            .for_each(|(r, (y, p))| *r = y - p);
        for a in 0..k {
            gradient[a] = dot(&model.columns[a], &self.scratch);
            for b in 0..=a {
                let v = dot3(&model.columns[a], &model.columns[b], &self.w);
                hessian[a * m + b] = v;
                hessian[b * m + a] = v;
            }
        }
        if m > k {
            let (mut gg, mut gy) = (0.0, 0.0);
            for &(row, d) in carriers {
                let w = self.w[row];
                gg += w * d * d;
                gy += d * self.scratch[row];
                for a in 0..k {
                    hessian[k * m + a] += w * d * model.columns[a][row];
                }
            }
            for a in 0..k {
                hessian[a * m + k] = hessian[k * m + a];
            }
            hessian[k * m + k] = gg;
            gradient[k] = gy;
        }
        (hessian, gradient)
    }

    /// The inverse of the Fisher information at the state's coefficients.
    fn inverse_information(
        &mut self,
        model: &LogisticModel,
        carriers: &[(usize, f64)],
    ) -> Option<Vec<f64>> {
        let (information, _) = self.fisher_information(model, carriers);
        let m = (information.len() as f64).sqrt() as usize;
        let (inverse, _) = symmetric_inverse(&information, m)?;
        Some(inverse)
    }

    /// The penalized log-likelihood `sum(y log p + (1-y) log(1-p)) + log(det I) / 2` at the
    /// state's coefficients, given the inverse information there (det I = 1 / det I^-1).
    fn penalized_loglik(&self, model: &LogisticModel, inverse: &[f64]) -> f64 {
        let m = (inverse.len() as f64).sqrt() as usize;
        let log_det_inverse = symmetric_inverse(inverse, m).map_or(f64::NAN, |(_, d)| d);
        let loglik: f64 = model
            .y
            .iter()
            .zip(&self.p)
            .map(|(y, p)| if *y > 0.5 { p.ln() } else { (1.0 - p).ln() })
            .sum();
        loglik - 0.5 * log_det_inverse
    }

    /// Firth's modified score `X'(y - p + h (1/2 - p))`, `h` the hat matrix's diagonal
    /// `w x' I^-1 x`, given the inverse information.
    fn firth_score(
        &mut self,
        model: &LogisticModel,
        carriers: &[(usize, f64)],
        inverse: &[f64],
    ) -> Vec<f64> {
        let k = model.columns.len();
        let m = if carriers.is_empty() { k } else { k + 1 };
        // scratch = x' I^-1 x over the covariates.
        self.scratch.fill(0.0);
        for a in 0..k {
            for b in 0..=a {
                let factor = if a == b {
                    inverse[a * m + a]
                } else {
                    2.0 * inverse[a * m + b]
                };
                let (ca, cb) = (&model.columns[a], &model.columns[b]);
                self.scratch
                    .iter_mut()
                    .zip(ca.iter().zip(cb))
                    .for_each(|(s, (x, z))| *s += factor * x * z);
            }
        }
        if m > k {
            for &(row, d) in carriers {
                let cross: f64 = (0..k)
                    .map(|a| inverse[k * m + a] * model.columns[a][row])
                    .sum();
                self.scratch[row] += 2.0 * d * cross + d * d * inverse[k * m + k];
            }
        }
        // scratch = y - p + w q (1/2 - p).
        for (i, s) in self.scratch.iter_mut().enumerate() {
            let p = self.p[i];
            *s = model.y[i] - p + self.w[i] * *s * (0.5 - p);
        }
        let mut score: Vec<f64> = model
            .columns
            .iter()
            .map(|c| dot(c, &self.scratch))
            .collect();
        if m > k {
            score.push(carriers.iter().map(|&(row, d)| d * self.scratch[row]).sum());
        }
        score
    }
}

/// `a . b`, with four partial sums so that the loop vectorises.
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..4 {
            acc[l] += x[l] * y[l];
        }
    }
    let tail: f64 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f64>() + tail
}

/// `sum a b w`, as [`dot`].
fn dot3(a: &[f64], b: &[f64], w: &[f64]) -> f64 {
    let mut acc = [0.0; 4];
    let (ca, cb, cw) = (a.chunks_exact(4), b.chunks_exact(4), w.chunks_exact(4));
    let (ra, rb, rw) = (ca.remainder(), cb.remainder(), cw.remainder());
    for ((x, y), z) in ca.zip(cb).zip(cw) {
        for l in 0..4 {
            acc[l] += x[l] * y[l] * z[l];
        }
    }
    let tail: f64 = ra.iter().zip(rb).zip(rw).map(|((x, y), z)| x * y * z).sum();
    acc.iter().sum::<f64>() + tail
}
