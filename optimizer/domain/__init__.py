"""The bottom layer: the household and its tables, readers, the policy, the numeric view of a
household under a policy, a trade list in shares, and the model vocabulary that constraint and
cost modules declare their rows in. Imports nothing above it."""
