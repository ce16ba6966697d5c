# Known answers for tests/test_commands_more.py (binomial_ci, post_test_probability).
# Regenerate: cd tests/reference/diagnostic && Rscript binom_more.R > binom_more.csv
ex <- binom.test(8, 10, conf.level = 0.95)$conf.int
wi <- prop.test(8, 10, conf.level = 0.90, correct = FALSE)$conf.int  # Wilson score interval
cat("case,lower,upper\n")
cat(sprintf("exact_8_10_95,%.15g,%.15g\n", ex[1], ex[2]))
cat(sprintf("wilson_8_10_90,%.15g,%.15g\n", wi[1], wi[2]))
