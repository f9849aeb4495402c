"""Code both sides import: reading notebook sources and running them statement by statement,
loading a file under a private module name. No grading decisions live here; in the worker the
notebook runner executes student code, in the engine only the instructor's reference."""
