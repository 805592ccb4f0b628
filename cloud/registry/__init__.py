"""The model registry: immutable signed model versions and their content-addressed files."""
