# Known answers for tests/test_diagnostic.py from epiR epi.tests (epiR 2.0.57).
# Table layout of epi.tests: rows test +/-, columns disease +/-: c(tp, fp, fn, tn) by row.
# Regenerate: cd tests/reference/diagnostic && Rscript diagnostic.R > epi_tests.csv
suppressPackageStartupMessages(library(epiR))
tables <- list(
  epir_example = c(670, 202, 74, 640),   # the epi.tests help page's example
  plms_100_100 = c(80, 30, 20, 70),      # Se 0.80, Sp 0.70 in 100 patients and 100 controls
  small = c(9, 2, 1, 13),
  zero_fp = c(25, 0, 5, 40)
)
out <- NULL
for (nm in names(tables)) {
  dat <- as.table(matrix(tables[[nm]], nrow = 2, byrow = TRUE))
  for (m in c("exact", "wilson")) {
    d <- epi.tests(dat, method = m, digits = 2, conf.level = 0.95)$detail
    out <- rbind(out, data.frame(table = nm, tp = tables[[nm]][1], fp = tables[[nm]][2], fn = tables[[nm]][3],
                                 tn = tables[[nm]][4], method = m, d))
  }
}
write.csv(format(out, digits = 17), row.names = FALSE)
