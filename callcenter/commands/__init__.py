"""Subcommands of the `callcenter` console script: one module each, each with `register()`."""
