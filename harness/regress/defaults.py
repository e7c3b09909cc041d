"""The verdict's defaults, in a module of their own so that the command line can show them
without importing pandas."""
CATEGORIES = ("exact", "time", "accuracy", "memory", "status")
ACC_TOLERANCE_POINTS = 1.0  # points of accuracy
MEMORY_TOLERANCE = 0.10     # a fraction of the base's high-water mark
ALPHA = 0.002               # asv's default
FACTOR = 1.10
