# Known answers for the paired DeLong test far in the tail (pROC's roc.test, p = 2 * pnorm(-|z|)),
# where a p-value computed as 2 * (1 - cdf) would be 0.  Run from the repository root:
#   Rscript tests/reference/risk/delong_far_tail.R
# It writes delong_far_tail.csv (the data, made here without random numbers) and
# delong_far_tail.json (the answers).
suppressPackageStartupMessages(library(pROC))
here <- "tests/reference/risk"
n <- 4000
i <- seq_len(n)
# a strong score and a weak one of the same people; y from a fixed pattern (no RNG)
strong <- sin(i * 0.7) + (i %% 7) / 7
y <- as.integer(strong + 0.35 * cos(i * 1.3) > 0.9)
weak <- strong * 0.5 + cos(i * 2.9)
d <- data.frame(y = y, strong = round(strong, 12), weak = round(weak, 12))
write.csv(d, file.path(here, "delong_far_tail.csv"), row.names = FALSE)
d <- read.csv(file.path(here, "delong_far_tail.csv"))
r1 <- roc(d$y, d$strong, levels = c(0, 1), direction = "<", quiet = TRUE)
r2 <- roc(d$y, d$weak, levels = c(0, 1), direction = "<", quiet = TRUE)
t <- roc.test(r1, r2, method = "delong", paired = TRUE)
cat(sprintf(paste0('{\n  "auc_strong": %.17g,\n  "auc_weak": %.17g,\n  "difference": %.17g,\n',
                   '  "z": %.17g,\n  "p_value": %.17g,\n  "versions": "R %s, pROC %s"\n}\n'),
            as.numeric(auc(r1)), as.numeric(auc(r2)), as.numeric(t$estimate[1] - t$estimate[2]),
            unname(t$statistic), t$p.value, getRversion(), packageVersion("pROC")),
    file = file.path(here, "delong_far_tail.json"))
