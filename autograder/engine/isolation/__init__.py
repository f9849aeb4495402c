"""Keeping student code apart: the worker pools (fork server or a fresh process per test), worker users, memory watch."""
