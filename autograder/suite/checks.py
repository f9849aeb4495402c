"""Validation and comparison of values that came back from student code.

Every check first proves the value is what it claims to be (a plain ``torch.Tensor``
of the right shape and dtype, finite), then compares. Failure messages say what was
expected and what came instead; when ``reveal`` is False they show no expected values.
"""
from __future__ import annotations

import torch

from autograder.suite.proxy import Remote


def describe(value) -> str:
    """A short, safe description of a value for messages."""
    if isinstance(value, Remote):
        return f"an object of type {value._type_name}"
    if type(value) is torch.Tensor:
        return f"a {str(value.dtype).replace('torch.', '')} tensor of shape {tuple(value.shape)}"
    if value is None:
        return "None (is the function still a TODO that ends in `pass`, or missing a `return`?)"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(describe(v) for v in value[:3])
        more = ", ..." if len(value) > 3 else ""
        return f"a {type(value).__name__} of {len(value)} items ({inner}{more})"
    return f"a {type(value).__name__}"


def expect_tensor(value, *, shape=None, dtype=None, what: str = "the result") -> torch.Tensor:
    if type(value) is not torch.Tensor:
        raise AssertionError(f"{what}: expected a torch.Tensor, got {describe(value)}.")
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise AssertionError(f"{what}: expected shape {tuple(shape)}, got shape {tuple(value.shape)}.")
    if dtype is not None and value.dtype != dtype:
        raise AssertionError(f"{what}: expected dtype {dtype}, got {value.dtype}.")
    if value.is_floating_point() and not bool(torch.isfinite(value).all()):
        bad = int((~torch.isfinite(value)).sum())
        raise AssertionError(f"{what}: {bad} of {value.numel()} values are NaN or infinite.")
    return value


def expect_close(actual, expected: torch.Tensor, *, what: str = "the result",
                 atol: float = 1e-3, rtol: float = 1e-3, reveal: bool = True) -> torch.Tensor:
    expected = expected.detach().to("cpu")
    actual = expect_tensor(actual, shape=expected.shape, what=what)
    if (actual.is_floating_point() != expected.is_floating_point()
            or (actual.dtype == torch.bool) != (expected.dtype == torch.bool)):
        raise AssertionError(f"{what}: expected a {expected.dtype} tensor, got {actual.dtype}.")
    a = actual.double()
    e = expected.double()
    err = (a - e).abs()
    bound = atol + rtol * e.abs()
    bad = err > bound
    if not bool(bad.any()):
        return actual
    n_bad = int(bad.sum())
    worst = int(torch.argmax(err - bound))
    index = tuple(int(i) for i in torch.unravel_index(torch.tensor(worst), e.shape)) if e.dim() else ()
    msg = (f"{what}: {n_bad} of {e.numel()} values differ from the expected ones "
           f"(largest error {float(err.flatten()[worst]):.3g} at index {index}; "
           f"tolerance {atol:g} + {rtol:g}*|expected|).")
    if reveal:
        msg += (f"\n  x (your value) at {index}: {float(a.flatten()[worst]):.6g}"
                f"\n  y (expected)   at {index}: {float(e.flatten()[worst]):.6g}")
    raise AssertionError(msg)
