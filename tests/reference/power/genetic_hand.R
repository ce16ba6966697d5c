# Hand calculation (R used as a calculator) of the power of a genetic association test;
# the steps are written out in genetic_hand.md. Regenerate: Rscript genetic_hand.R > genetic_hand.csv
hand <- function(q, OR, K, coding, share1, N, alpha) {
  pg <- c((1 - q)^2, 2 * q * (1 - q), q^2)                  # Hardy-Weinberg
  x <- switch(coding, additive = c(0, 1, 2), dominant = c(0, 1, 1), recessive = c(0, 0, 1))
  f <- function(b0) 1 / (1 + exp(-(b0 + x * log(OR))))      # penetrance of each genotype
  b0 <- uniroot(function(b) sum(pg * f(b)) - K, c(-50, 50), tol = 1e-14)$root
  cas <- pg * f(b0) / K; con <- pg * (1 - f(b0)) / (1 - K)  # Bayes
  mu1 <- sum(cas * x); mu0 <- sum(con * x)
  v1 <- sum(cas * x^2) - mu1^2; v0 <- sum(con * x^2) - mu0^2
  pool <- share1 * cas + (1 - share1) * con
  vp <- sum(pool * x^2) - sum(pool * x)^2
  n1 <- share1 * N; n0 <- (1 - share1) * N
  z <- qnorm(1 - alpha / 2)
  s0 <- sqrt(vp * (1 / n1 + 1 / n0)); s1 <- sqrt(v1 / n1 + v0 / n0)
  d <- abs(mu1 - mu0)
  c(b0 = b0, mu1 = mu1, mu0 = mu0, v1 = v1, v0 = v0, vp = vp, z = z,
    power = pnorm((d - z * s0) / s1) + pnorm((-d - z * s0) / s1))
}
a <- hand(0.24, 1.68, 0.08, "additive", 0.5, 2000, 5e-8)
b <- hand(0.24, 1.68, 0.08, "recessive", 0.08, 20000, 5e-8)
c <- hand(0.30, 1.30, 0.08, "dominant", 1 / 3, 3000, 0.05)
write.csv(data.frame(case = rep(c("additive_cc_2000", "recessive_pop_20000", "dominant_cc13_3000"), each = length(a)),
                     quantity = rep(names(a), 3), value = c(a, b, c)), row.names = FALSE)
