"""`skip2bench bench`: fine-tuning speed of the C core against the NumPy runner and PyTorch on this host."""
