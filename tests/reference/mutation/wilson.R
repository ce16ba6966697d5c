# Known answer for tests/test_mutation_tools.py: the 95% Wilson score interval of a mutation
# score of 145 killed out of 150 scored mutants (prop.test without continuity correction gives
# the Wilson interval). Rscript tests/reference/mutation/wilson.R prints:
# 0.9243482038 0.9856795681
ci <- prop.test(145, 150, correct = FALSE)$conf.int
cat(sprintf("%.10f %.10f\n", ci[1], ci[2]))
