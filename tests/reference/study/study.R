# Known answers for tests/test_study.py: p-values recomputed in R from the summary statistics of
# Park et al. 2023 (examples/park2023_dti_alps.toml). Regenerate: Rscript study.R > study_r.csv
t_from_stats <- function(m1, s1, n1, m2, s2, n2, welch) {
  if (welch) {
    se <- sqrt(s1^2 / n1 + s2^2 / n2)
    df <- (s1^2 / n1 + s2^2 / n2)^2 / ((s1^2 / n1)^2 / (n1 - 1) + (s2^2 / n2)^2 / (n2 - 1))
  } else {
    sp <- sqrt(((n1 - 1) * s1^2 + (n2 - 1) * s2^2) / (n1 + n2 - 2))
    se <- sp * sqrt(1 / n1 + 1 / n2); df <- n1 + n2 - 2
  }
  2 * pt(-abs((m1 - m2) / se), df)
}
# check the formula against t.test on data with exactly these summary statistics
set.seed(1)
x <- scale(rnorm(69))[, 1] * 0.241 + 1.481; y <- scale(rnorm(51))[, 1] * 0.245 + 1.601
stopifnot(abs(t.test(x, y, var.equal = TRUE)$p.value - t_from_stats(1.481, 0.241, 69, 1.601, 0.245, 51, FALSE)) < 1e-12)
stopifnot(abs(t.test(x, y)$p.value - t_from_stats(1.481, 0.241, 69, 1.601, 0.245, 51, TRUE)) < 1e-12)
r_p <- function(r, n) 2 * pt(-abs(r * sqrt((n - 2) / (1 - r^2))), n - 2)
sex <- matrix(c(20, 49, 13, 38), nrow = 2, byrow = TRUE)
chi <- suppressWarnings(chisq.test(sex, correct = FALSE)$statistic)
out <- data.frame(
  case = c("alps_student", "alps_welch", "alps_student_min", "alps_student_max", "age_student", "age_welch",
           "age_student_max", "sex_chi2", "sex_chi2_yates", "sex_fisher", "sex_chi2_n1", "r_age", "r_age_min",
           "r_age_max"),
  value = c(
    t_from_stats(1.481, 0.241, 69, 1.601, 0.245, 51, FALSE),
    t_from_stats(1.481, 0.241, 69, 1.601, 0.245, 51, TRUE),
    # rounding corners: the largest difference with the smallest SDs, and the reverse
    t_from_stats(1.4805, 0.2405, 69, 1.6015, 0.2445, 51, FALSE),
    t_from_stats(1.4815, 0.2415, 69, 1.6005, 0.2455, 51, FALSE),
    t_from_stats(57.0, 6.7, 69, 55.9, 8.1, 51, FALSE),
    t_from_stats(57.0, 6.7, 69, 55.9, 8.1, 51, TRUE),
    t_from_stats(56.95, 6.75, 69, 55.95, 8.15, 51, FALSE),
    suppressWarnings(chisq.test(sex, correct = FALSE)$p.value),
    suppressWarnings(chisq.test(sex, correct = TRUE)$p.value),
    fisher.test(sex)$p.value,
    pchisq(chi * (sum(sex) - 1) / sum(sex), 1, lower.tail = FALSE),
    r_p(-0.128, 69), r_p(-0.1285, 69), r_p(-0.1275, 69)))
write.csv(format(out, digits = 17), row.names = FALSE)
