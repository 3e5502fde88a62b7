"""Runs: each wires a data set, a model family and its optimizers to `minigen.train.train`."""
