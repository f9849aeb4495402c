"""Autograder for deep-learning assignments on attention and transformers.

Layout: ``trusted/`` decides scores and never imports student code; ``untrusted/`` runs
student code in worker processes; ``wire/`` is the data-only format crossing between them;
``suite/`` is what test suites import; assignments live in ``test_suites/<name>/``.
"""
__version__ = "0.1.0"
