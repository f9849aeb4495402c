"""Grading a whole class: inputs, jobs, the cluster backend, reports. Never shipped to Gradescope."""
