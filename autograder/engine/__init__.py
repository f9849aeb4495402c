"""Decides scores. Collects a suite's tests, stages the submission (``intake/``), runs each test
against student code held in a separate worker process (``isolation/``), and writes the result
(``formats/``). With ``worker/``, ``wire/``, ``suite/`` and ``common/`` this is all Gradescope runs.
Nothing here imports ``worker/``: workers are started as processes by module name."""
