"""Benchmarks (not tests): they time the pipeline and print numbers; results go to bench/results/."""
