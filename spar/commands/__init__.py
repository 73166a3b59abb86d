"""One module per `spar` verb: `add_arguments(parser)` and `run(args) -> int`."""
