"""Tools only instructors run: verify, build, the student bundle, reference replay, mutants. Never shipped to Gradescope."""
