"""Training, evaluation, inference, export and benchmarking on top of the model and data packages."""
