"""Fine-tuning task data: readers and feature builders per task format, task MindRecord files, postprocessing."""
