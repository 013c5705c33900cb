"""The BERT family on MindSpore: one backbone, its variants, data, training and metrics."""
