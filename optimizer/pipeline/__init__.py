"""The solve pipeline: assemble the declared model, solve along the solver chain, round to whole
shares and contracts, repair, check independently, build the result."""
