#!/usr/bin/env Rscript
# Reference values for tests/test_prevalence.py, computed with R (epitools, epiR, stats, splines).
#
# Run from the repository root:   Rscript tests/reference/prevalence/make_reference.R
# Reads  tests/data/prevalence_small.csv, tests/data/cohort_5000_seed20261122.csv and
#        tests/reference/prevalence/standards.csv (the bundled standard populations, an input);
# writes tests/reference/prevalence/reference.json.
#
# Jeffreys and Agresti-Coull intervals are written out from their definitions with qbeta/qnorm
# (no R package for them is installed here); every other value comes from a package function:
# epitools::binom.wilson, binom.exact, ageadjust.direct, oddsratio.wald; epiR::epi.directadj,
# epi.2by2 (Breslow-Day); stats::fisher.test, mantelhaen.test, glm, confint.default;
# splines::bs.
#
# Precision: R's defaults stop short of 1e-6 in two places, so the reference tightens them.
#  - fisher.test finds the conditional MLE and its limits with uniroot at tol = eps^0.25
#    (about 1e-4); fisher_tight below is fisher.test's own code with uniroot's tol set to 1e-13.
#    The default fisher.test values are stored too ("exact_default") for comparison.
#  - glm stops at a relative deviance change of 1e-8 and takes the covariance from the
#    weights of the previous iteration (standard errors off by ~1e-5 relative); the fits here
#    use glm.control(epsilon = 1e-14, maxit = 100).
suppressPackageStartupMessages({
  library(epitools); library(epiR); library(jsonlite); library(splines)
})
options(digits = 17)

here <- "tests/reference/prevalence"
stds <- read.csv(file.path(here, "standards.csv"))
alpha <- 0.05
fisher_tight <- fisher.test
environment(fisher_tight) <- list2env(
  list(uniroot = function(f, interval, ...) stats::uniroot(f, interval, ..., tol = 1e-13, maxiter = 10000)),
  parent = environment(fisher.test))
tight <- glm.control(epsilon = 1e-14, maxit = 100)
z <- qnorm(1 - alpha / 2)

binom_all <- function(x, n) {
  w <- binom.wilson(x, n); e <- binom.exact(x, n)
  jl <- ifelse(x == 0, 0, qbeta(alpha / 2, x + 0.5, n - x + 0.5))
  ju <- ifelse(x == n, 1, qbeta(1 - alpha / 2, x + 0.5, n - x + 0.5))
  nt <- n + z^2; pt <- (x + z^2 / 2) / nt
  data.frame(n = n, cases = x, prevalence = x / n,
             wilson_lower = w$lower, wilson_upper = w$upper,
             exact_lower = e$lower, exact_upper = e$upper,
             jeffreys_lower = jl, jeffreys_upper = ju,
             agresti_coull_lower = pmax(0, pt - z * sqrt(pt * (1 - pt) / nt)),
             agresti_coull_upper = pmin(1, pt + z * sqrt(pt * (1 - pt) / nt)))
}

# direct standardisation as rlsepi defines the strata: the standard's bands from the cohort's
# youngest to its oldest band; by sex each band's weight is split in halves.
direct <- function(d, lowers, weights, by_sex) {
  band <- findInterval(d$age, lowers)
  keep <- min(band):max(band)
  sexes <- if (by_sex) c("female", "male") else "all"
  s <- if (by_sex) d$sex else rep("all", nrow(d))
  count <- c(); pop <- c(); std <- c()
  for (b in keep) for (x in sexes) {
    sel <- band == b & s == x
    count <- c(count, sum(d$rls[sel])); pop <- c(pop, sum(sel))
    std <- c(std, weights[b] / length(sexes))
  }
  a <- ageadjust.direct(count = count, pop = pop, stdpop = std, conf.level = 1 - alpha)
  # epiR: one row of strata ("all"), one column per stratum of the adjustment
  obs <- matrix(count, nrow = 1, dimnames = list("all", paste0("s", seq_along(count))))
  tar <- matrix(pop, nrow = 1, dimnames = list("all", paste0("s", seq_along(count))))
  stdm <- matrix(std, nrow = 1, dimnames = list("", paste0("s", seq_along(count))))
  e <- epi.directadj(obs, tar, stdm, units = 1, conf.level = 1 - alpha)$adj.strata
  list(crude = unname(a["crude.rate"]), adjusted = unname(a["adj.rate"]),
       ci_lower = unname(a["lci"]), ci_upper = unname(a["uci"]),
       epir_adjusted = e$est, epir_ci_lower = e$lower, epir_ci_upper = e$upper)
}

odds <- function(d, strata) {
  f <- as.integer(d$sex == "female"); y <- d$rls
  a <- sum(f == 1 & y == 1); b <- sum(f == 1 & y == 0); c <- sum(f == 0 & y == 1); dd <- sum(f == 0 & y == 0)
  # epitools: rows = exposure (reference first), columns = outcome (no, yes)
  wald <- oddsratio.wald(matrix(c(dd, b, c, a), nrow = 2, dimnames = list(c("male", "female"), c("no", "yes"))))
  ft <- fisher_tight(matrix(c(a, c, b, dd), nrow = 2), conf.level = 1 - alpha)
  ft0 <- fisher.test(matrix(c(a, c, b, dd), nrow = 2), conf.level = 1 - alpha)
  # Mantel-Haenszel over the strata that hold both sexes and both outcomes
  tabs <- list(); labels <- c()
  for (s in sort(unique(strata))) {
    sel <- strata == s
    t <- matrix(c(sum(f[sel] == 1 & y[sel] == 1), sum(f[sel] == 0 & y[sel] == 1),
                  sum(f[sel] == 1 & y[sel] == 0), sum(f[sel] == 0 & y[sel] == 0)), nrow = 2)
    if (all(rowSums(t) > 0) && all(colSums(t) > 0)) { tabs[[length(tabs) + 1]] <- t; labels <- c(labels, s) }
  }
  arr <- array(unlist(tabs), dim = c(2, 2, length(tabs)))
  mh <- mantelhaen.test(arr, correct = FALSE, conf.level = 1 - alpha)
  ep <- epi.2by2(as.table(arr), method = "cross.sectional", conf.level = 1 - alpha)
  bd <- ep$massoc.detail$OR.homog.brday
  list(woolf = list(estimate = wald$measure["female", "estimate"], ci_lower = wald$measure["female", "lower"],
                    ci_upper = wald$measure["female", "upper"]),
       exact = list(estimate = unname(ft$estimate), ci_lower = ft$conf.int[1], ci_upper = ft$conf.int[2],
                    pvalue = ft$p.value),
       exact_default = list(estimate = unname(ft0$estimate), ci_lower = ft0$conf.int[1], ci_upper = ft0$conf.int[2]),
       mh = list(estimate = unname(mh$estimate), ci_lower = mh$conf.int[1], ci_upper = mh$conf.int[2],
                 chi2 = unname(mh$statistic), pvalue = mh$p.value, strata_used = labels,
                 breslow_day = bd$test.statistic, breslow_day_df = bd$df, breslow_day_pvalue = bd$p.value,
                 epir_mh = ep$massoc.detail$OR.mh.wald$est))
}

logit_or <- function(fit, alpha) {
  b <- coef(fit)[["female"]]; ci <- confint.default(fit, "female", level = 1 - alpha)
  list(estimate = exp(b), ci_lower = exp(ci[1]), ci_upper = exp(ci[2]),
       se = sqrt(vcov(fit)["female", "female"]), pvalue = summary(fit)$coefficients["female", 4])
}

peak <- function(d, spline = TRUE) {
  d$u <- (d$age - 50) / 10
  q <- glm(rls ~ u + I(u^2), family = binomial, data = d, control = tight)
  b <- coef(q); u0 <- -b[2] / (2 * b[3])
  out <- list(quadratic = list(age = unname(50 + 10 * u0),
                               prevalence = unname(plogis(b[1] + b[2] * u0 + b[3] * u0^2))))
  if (spline) {
    s <- glm(rls ~ bs(age, df = 4, Boundary.knots = range(d$age)), family = binomial, data = d, control = tight)
    grid <- data.frame(age = seq(min(d$age), max(d$age)))
    p <- predict(s, newdata = grid, type = "response")
    out$spline <- list(age = grid$age[which.max(p)], prevalence = unname(max(p)))
  }
  out
}

analyse <- function(d, band_width, std_breaks = NULL, user_std = NULL, spline = TRUE, covariate = NULL) {
  band <- floor(d$age / band_width) * band_width
  res <- list()
  res$crude <- binom_all(sum(d$rls), nrow(d))
  g <- aggregate(rls ~ sex + band, data = transform(d, band = band), FUN = function(v) c(sum(v), length(v)))
  strat <- binom_all(g$rls[, 1], g$rls[, 2]); strat <- cbind(sex = g$sex, age_lower = g$band, strat)
  res$by_sex_age <- strat[order(strat$sex, strat$age_lower), ]
  res$standardised <- list()
  for (nm in unique(stds$standard)) {
    s <- stds[stds$standard == nm, ]
    res$standardised[[nm]] <- list(age = direct(d, s$age_lower, s$weight, FALSE),
                                   age_sex = direct(d, s$age_lower, s$weight, TRUE))
  }
  if (!is.null(std_breaks)) {
    s <- stds[stds$standard == "esp2013", ]
    grp <- findInterval(s$age_lower, std_breaks)
    w <- tapply(s$weight[grp > 0], grp[grp > 0], sum)
    res$standardised_esp2013_breaks <- list(breaks = std_breaks, age = direct(d, std_breaks, as.numeric(w), FALSE))
  }
  if (!is.null(user_std)) {
    res$standardised_user <- list(lowers = user_std$lowers, weights = user_std$weights,
                                  age = direct(d, user_std$lowers, user_std$weights, FALSE),
                                  age_sex = direct(d, user_std$lowers, user_std$weights, TRUE))
  }
  res$odds_ratio <- odds(d, band)
  d$female <- as.integer(d$sex == "female")
  res$logistic <- list(age = logit_or(glm(rls ~ female + age, family = binomial, data = d, control = tight), alpha),
                       age_quadratic = logit_or(glm(rls ~ female + age + I(age^2), family = binomial, data = d, control = tight), alpha))
  if (!is.null(covariate)) {
    f <- as.formula(paste("rls ~ female + age +", covariate))
    res$logistic[[paste0("age_", covariate)]] <- logit_or(glm(f, family = binomial, data = d, control = tight), alpha)
  }
  res$peak <- peak(d, spline)
  res
}

small <- read.csv("tests/data/prevalence_small.csv")
sim <- read.csv("tests/data/cohort_5000_seed20261122.csv")
ref <- list(
  generated_by = "tests/reference/prevalence/make_reference.R",
  r_version = R.version.string,
  packages = list(epitools = as.character(packageVersion("epitools")), epiR = as.character(packageVersion("epiR"))),
  alpha = alpha,
  small = analyse(small, band_width = 1, std_breaks = c(15, 45, 70),
                  user_std = list(lowers = c(20, 45, 70), weights = c(3, 2, 1)), spline = FALSE),
  sim = analyse(sim, band_width = 5, covariate = "ferritin")
)
# small 2x2 tables [[a, b], [c, d]] (exposed cases, exposed non-cases, unexposed cases, unexposed
# non-cases), including zero cells, for the exact conditional odds ratio
ref$exact_2x2 <- lapply(list(c(3, 1, 1, 3), c(0, 10, 5, 5), c(10, 0, 3, 7), c(1, 19, 0, 20), c(7, 13, 2, 18)),
  function(t) {
    ft <- fisher_tight(matrix(c(t[1], t[3], t[2], t[4]), nrow = 2), conf.level = 1 - alpha)
    list(table = t, estimate = unname(ft$estimate), ci_lower = ft$conf.int[1], ci_upper = ft$conf.int[2],
         pvalue = ft$p.value)
  })
# Far-tail p-values: stratified 2x2 tables (one [a, b, c, d] per stratum, as above) whose
# Mantel-Haenszel or Breslow-Day p-values lie far below 1e-16, down to about 1e-300.
# mantelhaen.test takes its p-value from pchisq(lower.tail = FALSE). epi.2by2 reports the
# Breslow-Day p-value as 1 - pchisq(), which is 0 here, so the reference takes its statistic
# and computes the p-value with pchisq(lower.tail = FALSE); epiR's own value is kept to show it.
# The crude table of the strata pooled gives the Woolf p-value 2 * pnorm(-|z|) and Fisher's;
# glm gives the Wald p-value of female adjusted for age (2 * pnorm(-|z|) in summary.glm).
ref$far_tail <- lapply(list(
    list(c(300, 700, 100, 900), c(400, 600, 150, 850), c(350, 650, 120, 880)),
    list(c(960, 2240, 320, 2880), c(1280, 1920, 480, 2720), c(1120, 2080, 384, 2816)),
    list(c(850, 150, 500, 500), c(120, 880, 500, 500), c(300, 700, 250, 750)),
    list(c(1900, 330, 1100, 1100), c(264, 1936, 1100, 1100), c(660, 1540, 550, 1650))),
  function(tabs) {
    arr <- array(unlist(lapply(tabs, function(t) c(t[1], t[3], t[2], t[4]))), dim = c(2, 2, length(tabs)))
    mh <- mantelhaen.test(arr, correct = FALSE, conf.level = 1 - alpha)
    bd <- epi.2by2(as.table(arr), method = "cross.sectional", conf.level = 1 - alpha)$massoc.detail$OR.homog.brday
    crude <- Reduce(`+`, tabs)
    lor <- log(crude[1] * crude[4] / (crude[2] * crude[3]))
    se <- sqrt(sum(1 / crude))
    # people: stratum k at age 30 + 20 (k - 1); logistic regression of rls on female + age
    people <- do.call(rbind, lapply(seq_along(tabs), function(k) {
      t <- tabs[[k]]
      data.frame(age = 30 + 20 * (k - 1), female = rep(c(1, 1, 0, 0), t), rls = rep(c(1, 0, 1, 0), t))
    }))
    lg <- glm(rls ~ female + age, family = binomial, data = people, control = tight)
    list(strata = tabs, mh_chi2 = unname(mh$statistic), mh_pvalue = mh$p.value,
         logistic_pvalue = summary(lg)$coefficients["female", 4],
         mh_log10_pvalue = pchisq(unname(mh$statistic), 1, lower.tail = FALSE, log.p = TRUE) / log(10),
         breslow_day = bd$test.statistic, breslow_day_df = bd$df,
         breslow_day_pvalue = pchisq(bd$test.statistic, bd$df, lower.tail = FALSE),
         epir_breslow_day_pvalue = bd$p.value,
         woolf_pvalue = 2 * pnorm(-abs(lor / se)),
         fisher_pvalue = fisher.test(matrix(c(crude[1], crude[3], crude[2], crude[4]), nrow = 2))$p.value)
  })
writeLines(toJSON(ref, digits = NA, auto_unbox = TRUE, pretty = TRUE, dataframe = "rows"),
           file.path(here, "reference.json"))
cat("wrote", file.path(here, "reference.json"), "\n")
