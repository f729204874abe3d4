"""The UI: one module per capability; widgets to requests, results to widgets, nothing else."""
