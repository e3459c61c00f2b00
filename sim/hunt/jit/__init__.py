"""Compiled (numba) engine of the hunt's episodes."""
