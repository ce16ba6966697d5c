# Known answers for rlsepi.descriptive.table_one, computed in base R from the raw fixture.
#
# Run from the repository root:  Rscript tests/reference/descriptive/table_one.R
# Reads  tests/reference/risk/cohort.csv (5,000 simulated people, see ../risk/README.md)
# Writes tests/reference/descriptive/table_one.csv: one row per (item, group, statistic).
#
# Definitions (from the docstring, written out here independently of the Python code):
#   age: mean and SD (n - 1); women: count and share; pregnant: count among women aged
#   18-49 (the reproductive ages of rlsepi.parameters' pregnancy block: 18 and 49, typed
#   here); ferritin: median and quartiles (R's default type-7 quantiles, the same
#   definition as numpy/pandas "linear"); ferritin <= 50 ug/L: count; effect-allele
#   frequency of each variant: allele count / (2 x people).
here <- "tests/reference/descriptive"
d <- read.csv("tests/reference/risk/cohort.csv", stringsAsFactors = FALSE)
d$rls <- d$rls %in% c("True", "TRUE", "1")
d$pregnant <- d$pregnant %in% c("True", "TRUE", "1")
groups <- list("no RLS" = d[!d$rls, ], "RLS" = d[d$rls, ], overall = d)
out <- data.frame()
add <- function(item, group, stat, value) {
  out <<- rbind(out, data.frame(item = item, group = group, statistic = stat, value = value))
}
for (g in names(groups)) {
  s <- groups[[g]]
  add("people", g, "n", nrow(s))
  add("age", g, "mean", mean(s$age))
  add("age", g, "sd", sd(s$age))
  add("women", g, "count", sum(s$sex == "female"))
  w <- s[s$sex == "female" & s$age >= 18 & s$age <= 49, ]
  add("pregnant", g, "count", sum(w$pregnant))
  add("pregnant", g, "denominator", nrow(w))
  q <- quantile(s$ferritin, c(0.5, 0.25, 0.75), type = 7, names = FALSE)
  add("ferritin", g, "median", q[1])
  add("ferritin", g, "q1", q[2])
  add("ferritin", g, "q3", q[3])
  add("ferritin_low", g, "count", sum(s$ferritin <= 50))
  for (v in c("rs2300478", "rs9357271", "rs1975197", "rs4626664")) {
    add(v, g, "frequency", sum(s[[v]]) / (2 * nrow(s)))
  }
}
out$value <- sprintf("%.17g", out$value)
write.csv(out, file.path(here, "table_one.csv"), row.names = FALSE, quote = TRUE)
cat(R.version.string, "\n")
