"""Experiments: benchmark suites, the benchmark runner, peer libraries, ablation, reports, plots."""
