# Known answers for the 95% interval of an individual risk under a fitted model (delta method).
#
# Run from the repository root:
#   Rscript tests/reference/risk/predict_se.R
# Reads cohort.csv and weights.csv beside this script; writes predict_output.csv beside it.
# Fits M3 (quadratic age, log2 ferritin: the default of rlsepi fit) with glm() on the raw cohort,
# building every derived column here, and for three people whose every input is known gives
# predict(type = "link", se.fit = TRUE) and the interval plogis(eta -/+ qnorm(0.975) * se).
args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
d <- read.csv(file.path(here, "cohort.csv"), stringsAsFactors = FALSE)
w <- read.csv(file.path(here, "weights.csv"), stringsAsFactors = FALSE)

derive <- function(x, prs_mean, prs_sd) {
  x$female <- as.numeric(x$sex == "female")
  x$age10 <- (x$age - 50) / 10
  x$age10_sq <- x$age10^2
  prs <- as.vector(as.matrix(x[, w$rsid]) %*% as.numeric(w$weight))
  x$prs_sd <- (prs - prs_mean) / prs_sd
  x$ferritin_halving <- -log2(x$ferritin)
  tri <- ifelse(as.logical(x$pregnant), x$trimester, 0)
  for (k in 1:3) x[[paste0("trimester", k)]] <- as.numeric(tri == k)
  x
}
prs <- as.vector(as.matrix(d[, w$rsid]) %*% as.numeric(w$weight))
d <- derive(d, mean(prs), sd(prs))
d$y <- as.integer(as.logical(d$rls))
fit <- glm(y ~ age10 + age10_sq + female + prs_sd + ferritin_halving + trimester1 + trimester2 + trimester3,
           family = binomial, data = d, control = glm.control(epsilon = 1e-14, maxit = 100))

people <- data.frame(
  person = c("pregnant_low_ferritin", "older_man", "woman_45"),
  age = c(34, 67, 45), sex = c("female", "male", "female"), pregnant = c(TRUE, FALSE, FALSE),
  trimester = c(3, NA, NA), ferritin = c(20, 140, 35),
  rs2300478 = c(1, 2, 0), rs9357271 = c(1, 2, 1), rs1975197 = c(2, 0, 0), rs4626664 = c(0, 1, 0)
)
nd <- derive(people, mean(prs), sd(prs))
pr <- predict(fit, newdata = nd, type = "link", se.fit = TRUE)
z <- qnorm(0.975)
out <- data.frame(person = people$person, eta = pr$fit, se = pr$se.fit, probability = plogis(pr$fit),
                  lower = plogis(pr$fit - z * pr$se.fit), upper = plogis(pr$fit + z * pr$se.fit))
write.csv(out, file.path(here, "predict_output.csv"), row.names = FALSE)
print(out, digits = 12)
