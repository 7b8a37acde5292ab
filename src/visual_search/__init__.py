"""Visual product search: embed photos, index the vectors, find the most similar catalogue images."""

__version__ = "0.1.0"
