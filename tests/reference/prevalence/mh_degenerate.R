# Known answers for a Mantel-Haenszel table with no male cases in any stratum (the pooled
# odds ratio is infinite).  Run from this folder:  Rscript mh_degenerate.R > mh_degenerate.json
# Strata as [a, b, c, d] = female cases, female non-cases, male cases, male non-cases.
strata <- list(c(5, 40, 0, 50), c(9, 30, 0, 45), c(4, 25, 0, 38))
x <- array(unlist(lapply(strata, function(s) matrix(s, 2, 2, byrow = TRUE))), dim = c(2, 2, length(strata)))
m <- mantelhaen.test(x, correct = FALSE)
cat(sprintf('{\n  "strata": [%s],\n  "mh_chi2": %.17g,\n  "mh_pvalue": %.17g,\n  "estimate": "%s",\n  "r_version": "%s"\n}\n',
            paste(sapply(strata, function(s) sprintf("[%s]", paste(s, collapse = ", "))), collapse = ", "),
            unname(m$statistic), m$p.value, format(unname(m$estimate)), R.version.string))
