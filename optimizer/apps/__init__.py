"""Applications on top of the pipeline: the command line, batch jobs, policy sweeps and their
executors, benchmarks."""
