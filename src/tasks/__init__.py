"""Per-task glue: which head, which loss, which batches, which metric."""
