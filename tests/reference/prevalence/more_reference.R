#!/usr/bin/env Rscript
# More known answers for tests/test_prevalence.py, computed with R (epitools, stats).
#
# Run from the repository root:   Rscript tests/reference/prevalence/more_reference.R
# Reads  tests/data/cohort_5000_seed20261122.csv; writes tests/reference/prevalence/more_reference.json.
#
#  - logistic_coefficients: the whole coefficient table of glm(rls ~ female + age + ferritin)
#    (estimate, SE, Wald p-value of every term), as summary.glm prints it; rlsepi's
#    adjusted_odds_ratio(adjust=("age", "ferritin")).coefficients names the terms
#    const, exposed, age, ferritin.
#  - large_denominators: epitools::ageadjust.direct with stratum sizes of 4, 5 and 6 billion
#    (person-years of a national register, say): beyond 3.04e9 the square of an integer
#    denominator overflows 64-bit integers, so the rate must be computed in floating point.
suppressPackageStartupMessages({ library(epitools); library(jsonlite) })

tight <- glm.control(epsilon = 1e-14, maxit = 100)
d <- read.csv("tests/data/cohort_5000_seed20261122.csv")
d$female <- as.integer(d$sex == "female")
fit <- glm(rls ~ female + age + ferritin, family = binomial, data = d, control = tight)
co <- summary(fit)$coefficients
coefs <- list(term = c("const", "exposed", "age", "ferritin"), coef = unname(co[, 1]),
              se = unname(co[, 2]), pvalue = unname(co[, 4]))

count <- c(120000000, 300000000, 550000000)
pop <- c(4000000000, 5000000000, 6000000000)
std <- c(3, 2, 1)
a <- ageadjust.direct(count = count, pop = pop, stdpop = std, conf.level = 0.95)
large <- list(cases = count, n = pop, weight = std, adjusted = unname(a["adj.rate"]),
              ci_lower = unname(a["lci"]), ci_upper = unname(a["uci"]))

out <- list(generated_by = "tests/reference/prevalence/more_reference.R", r_version = R.version.string,
            epitools = as.character(packageVersion("epitools")),
            logistic_coefficients = coefs, large_denominators = large)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "tests/reference/prevalence/more_reference.json")
