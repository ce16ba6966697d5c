# Known answers for rlsepi.risk_models from R's glm() and pROC.
#
# Run from the repository root (after make_fixture.py, if the fixture changes):
#   Rscript tests/reference/risk/glm_proc.R
# Reads cohort.csv and weights.csv beside this script; writes r_output.csv beside it.
# Every derived column is computed here from the raw cohort, independently of rlsepi.
suppressPackageStartupMessages(library(pROC))
args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
d <- read.csv(file.path(here, "cohort.csv"), stringsAsFactors = FALSE)
w <- read.csv(file.path(here, "weights.csv"), stringsAsFactors = FALSE)

y <- as.integer(as.logical(d$rls))
d$female <- as.numeric(d$sex == "female")
d$age10 <- (d$age - 50) / 10
d$age10_sq <- d$age10^2
knots <- quantile(d$age, c(0.05, 0.35, 0.65, 0.95), type = 7, names = FALSE)
rcs <- function(x, t, j) {  # Harrell's restricted cubic spline term j (k = 4 knots)
  k <- length(t)
  pos <- function(u) pmax(u, 0)^3
  (pos(x - t[j]) - pos(x - t[k - 1]) * (t[k] - t[j]) / (t[k] - t[k - 1]) +
     pos(x - t[k]) * (t[k - 1] - t[j]) / (t[k] - t[k - 1])) / (t[k] - t[1])^2
}
d$age_rcs1 <- rcs(d$age, knots, 1)
d$age_rcs2 <- rcs(d$age, knots, 2)
prs <- as.vector(as.matrix(d[, w$rsid]) %*% as.numeric(w$weight))
d$prs_sd <- (prs - mean(prs)) / sd(prs)
d$ferritin_halving <- -log2(d$ferritin)
d$ferritin_lt50 <- as.numeric(d$ferritin < 50)
d$ferritin_50_75 <- as.numeric(d$ferritin >= 50 & d$ferritin <= 75)
preg <- as.logical(d$pregnant)
tri <- ifelse(preg, d$trimester, 0)
for (k in 1:3) d[[paste0("trimester", k)]] <- as.numeric(tri == k)
d$y <- y

codings <- list(
  list(age = "quadratic", ferritin = "log2"),
  list(age = "quadratic", ferritin = "cut"),
  list(age = "spline", ferritin = "log2")
)
out <- list()
add <- function(coding, model, kind, name, value) {
  out[[length(out) + 1]] <<- data.frame(age = coding$age, ferritin = coding$ferritin, model = model,
                                        kind = kind, name = name, value = value)
}
ctl <- glm.control(epsilon = 1e-14, maxit = 100)
for (cd in codings) {
  age_terms <- if (cd$age == "quadratic") c("age10", "age10_sq") else c("age10", "age_rcs1", "age_rcs2")
  fer_terms <- if (cd$ferritin == "log2") "ferritin_halving" else c("ferritin_lt50", "ferritin_50_75")
  terms <- list(
    M0 = c("female", age_terms),
    M1 = c("female", age_terms, "prs_sd"),
    M2 = c("female", age_terms, "prs_sd", fer_terms),
    M3 = c("female", age_terms, "prs_sd", fer_terms, "trimester1", "trimester2", "trimester3")
  )
  rocs <- list()
  for (m in names(terms)) {
    f <- as.formula(paste("y ~", paste(terms[[m]], collapse = " + ")))
    fit <- glm(f, family = binomial, data = d, control = ctl)
    s <- summary(fit)$coefficients
    nm <- sub("\\(Intercept\\)", "const", rownames(s))
    for (i in seq_len(nrow(s))) {
      add(cd, m, "estimate", nm[i], s[i, 1])
      add(cd, m, "se", nm[i], s[i, 2])
      add(cd, m, "p_value", nm[i], s[i, 4])
    }
    add(cd, m, "metric", "loglik", as.numeric(logLik(fit)))
    r <- roc(d$y, fitted(fit), levels = c(0, 1), direction = "<", quiet = TRUE)
    rocs[[m]] <- r
    ci <- ci.auc(r, method = "delong", conf.level = 0.95)
    add(cd, m, "metric", "auc", as.numeric(ci[2]))
    add(cd, m, "metric", "auc_lower", as.numeric(ci[1]))
    add(cd, m, "metric", "auc_upper", as.numeric(ci[3]))
    add(cd, m, "metric", "brier", mean((d$y - fitted(fit))^2))
    if (cd$age == "quadratic" && cd$ferritin == "log2" && m %in% c("M0", "M2")) {
      pr <- suppressMessages(confint(fit, level = 0.95))  # profile likelihood (stats::confint.glm)
      pn <- sub("\\(Intercept\\)", "const", rownames(pr))
      for (i in seq_len(nrow(pr))) {
        add(cd, m, "profile_lower", pn[i], pr[i, 1])
        add(cd, m, "profile_upper", pn[i], pr[i, 2])
      }
    }
  }
  for (i in 2:4) {
    big <- names(terms)[i]; small <- names(terms)[i - 1]
    t <- roc.test(rocs[[big]], rocs[[small]], method = "delong", paired = TRUE)
    lab <- paste(big, "vs", small)
    add(cd, lab, "comparison", "auc_difference", as.numeric(t$estimate[1] - t$estimate[2]))
    add(cd, lab, "comparison", "auc_difference_lower", t$conf.int[1])
    add(cd, lab, "comparison", "auc_difference_upper", t$conf.int[2])
    add(cd, lab, "comparison", "auc_difference_p_value", t$p.value)
  }
}
res <- do.call(rbind, out)
write.csv(res, file.path(here, "r_output.csv"), row.names = FALSE)
cat(sprintf("R %s, pROC %s: wrote %d rows to r_output.csv\n", getRversion(), packageVersion("pROC"), nrow(res)))
