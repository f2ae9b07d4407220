"""Applications on top of the pipeline: the command line, batch jobs and their executors,
benchmarks."""
