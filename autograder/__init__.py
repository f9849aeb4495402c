"""Autograder for deep-learning assignments on attention and transformers.

Folders by role (the import direction is kept by tests/test_layout.py):

* ``worker/``     student code runs here, in separate processes, and only here
* ``wire/``       the data-only format that crosses between worker and engine (JSON, tensor bytes)
* ``common/``     pure helpers both sides import (notebook sources)
* ``suite/``      the only thing test suites import: base class, decorators, checks, proxies
* ``engine/``     decides scores: intake, isolation, the test loop, result formats
* ``gradescope/`` what run_autograder calls on the server
* ``instructor/`` tools only instructors run: verify, build, the student bundle, reference replay
* ``batch/``      grading a whole class, its reports and cluster backend
* ``cli.py``      one verb per workflow

Assignments live in ``test_suites/<name>/`` (tests and config), ``reference/<name>/`` and
``student_template/<name>/``.
"""
__version__ = "0.1.0"
