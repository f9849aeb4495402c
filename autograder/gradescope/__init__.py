"""Gradescope's entry: what run_autograder calls, and its per-student rate limit."""
