#!/usr/bin/env Rscript
# Reference for the local peak age and its Fieller-type interval (tests/test_prevalence.py),
# computed independently with R's glm.
#
# Run from the repository root:   Rscript tests/reference/prevalence/peak_fieller.R
# Writes tests/reference/prevalence/peak_counts.csv (the data: counts drawn here with R's RNG)
# and tests/reference/prevalence/peak_fieller.json (the answers); also reads the 5,000-person
# fixture tests/data/cohort_5000_seed20261122.csv for the global quadratic below.
#
# The data: 12,000 people at each age 18-99 and cases ~ Binomial(12000, p(age)) with
# logit p = -2 - 0.5 v^2 + 0.05 v^3 - 0.02 v^4, v = (age - 50) / 10 (a skewed peak near 50).
#
# The estimator, written out from its definition:
#  - the local fit at centre c: glm(cbind(cases, n - cases) ~ u + I(u^2), binomial, weights k),
#    u = (age - c) / 10, k = exp(-(age - c)^2 / (2 h^2)), h = 4 (prior weights multiply each
#    age's binomial log-likelihood: the kernel-weighted likelihood);
#  - the peak: the centre c at which the local slope b1(c) is 0 (uniroot);
#  - the sandwich variance of the local coefficients, H^-1 M H^-1 with
#    H = X' diag(k n mu (1 - mu)) X and M = X' diag(k^2 n mu (1 - mu)) X;
#  - the interval: the ages c with |b1(c)| <= z SE(b1(c)) (uniroot of b1/SE = +z below the
#    peak and -z above it);
#  - the delta-method SE of the peak: 10 SE(b1) / (2 |b2|) at the peak.
options(digits = 17)
suppressPackageStartupMessages(library(jsonlite))
here <- "tests/reference/prevalence"

set.seed(20261124)
age <- 18:99
v <- (age - 50) / 10
p <- plogis(-2 - 0.5 * v^2 + 0.05 * v^3 - 0.02 * v^4)
n <- rep(12000, length(age))
cases <- rbinom(length(age), n, p)
write.csv(data.frame(age = age, n = n, cases = cases), file.path(here, "peak_counts.csv"), row.names = FALSE)

h <- 4
z <- qnorm(0.975)
local_fit <- function(c) {
  u <- (age - c) / 10
  k <- exp(-0.5 * ((age - c) / h)^2)
  fit <- suppressWarnings(glm(cbind(cases, n - cases) ~ u + I(u^2), family = binomial, weights = k,
                              control = glm.control(epsilon = 1e-15, maxit = 100)))
  X <- model.matrix(fit)
  mu <- fitted(fit)
  w <- n * mu * (1 - mu)
  H <- crossprod(X, (k * w) * X)
  M <- crossprod(X, (k^2 * w) * X)
  Hi <- solve(H)
  V <- Hi %*% M %*% Hi
  b <- unname(coef(fit))
  list(b1 = b[2], b2 = b[3], se1 = sqrt(V[2, 2]))
}
tstat <- function(c) { f <- local_fit(c); f$b1 / f$se1 }
peak <- uniroot(function(c) local_fit(c)$b1, c(40, 60), tol = 1e-12)$root
at <- local_fit(peak)
lower <- uniroot(function(c) tstat(c) - z, c(peak - 10, peak), tol = 1e-12)$root
upper <- uniroot(function(c) tstat(c) + z, c(peak, peak + 10), tol = 1e-12)$root
out <- list(bandwidth = h, peak = peak, ci_lower = lower, ci_upper = upper,
            se = 10 * at$se1 / (2 * abs(at$b2)), b2_at_peak = at$b2,
            r_version = R.version.string)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), file.path(here, "peak_fieller.json"))
print(out)

# --- Fieller's interval for the vertex of one global parabola (model = "quadratic") ---------
# logit p = b0 + b1 u + b2 u^2, u = (age - 50) / 10; the vertex u* = -b1 / (2 b2); Fieller's set
# {u : (b1 + 2 b2 u)^2 <= z^2 (V11 + 4 u V12 + 4 u^2 V22)} with V = vcov(glm), solved as a
# quadratic in u; the delta-method SE from the gradient (-1/(2 b2), b1/(2 b2^2)). On the counts
# above (glm on cbind(cases, n - cases)) and on the 5,000-person fixture (one row per person).
tight <- glm.control(epsilon = 1e-14, maxit = 100)
fieller_vertex <- function(fit) {
  b <- unname(coef(fit)); V <- unname(vcov(fit))
  b1 <- b[2]; b2 <- b[3]
  A <- 4 * (b2^2 - z^2 * V[3, 3]); B <- 4 * (b1 * b2 - z^2 * V[2, 3]); C <- b1^2 - z^2 * V[2, 2]
  roots <- sort((-B + c(-1, 1) * sqrt(B^2 - 4 * A * C)) / (2 * A))
  g <- c(-1 / (2 * b2), b1 / (2 * b2^2))
  list(peak = 50 - 10 * b1 / (2 * b2), ci_lower = 50 + 10 * roots[1], ci_upper = 50 + 10 * roots[2],
       se = 10 * sqrt(drop(t(g) %*% V[2:3, 2:3] %*% g)))
}
u <- (age - 50) / 10
q_counts <- glm(cbind(cases, n - cases) ~ u + I(u^2), family = binomial, control = tight)
sim <- read.csv("tests/data/cohort_5000_seed20261122.csv")
sim$u <- (sim$age - 50) / 10
q_sim <- glm(rls ~ u + I(u^2), family = binomial, data = sim, control = tight)
out$quadratic <- list(counts = fieller_vertex(q_counts), sim = fieller_vertex(q_sim))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), file.path(here, "peak_fieller.json"))
print(out$quadratic)
