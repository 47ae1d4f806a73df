"""Tools around the core: benchmarks, reproduction, the cluster launcher, load tests."""
