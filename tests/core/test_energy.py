"""The GPU's energy shared out among the requests: exact for known draws, and for any
samples and requests, the shares add up to what was drawn while requests ran."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ghubai_tray.core.energy import Sample, Span, drawn_while_running, shares


def test_one_request_at_a_steady_draw_carries_all_of_it() -> None:
    samples = [Sample(t, 200.0) for t in range(0, 21)]
    assert shares(samples, [Span(5.0, 15.0)]) == [pytest.approx(200 * 10 / 3600)]


def test_two_requests_running_together_each_carry_half() -> None:
    samples = [Sample(0.0, 300.0), Sample(10.0, 300.0)]
    first, second = shares(samples, [Span(0.0, 10.0), Span(5.0, 10.0)])
    # 0-5 s: the first alone (1500 J); 5-10 s: shared (750 J each)
    assert first == pytest.approx(2250 / 3600) and second == pytest.approx(750 / 3600)


def test_a_rising_draw_is_taken_as_linear_between_samples() -> None:
    assert shares([Sample(0.0, 100.0), Sample(10.0, 300.0)], [Span(0.0, 10.0)]) == [
        pytest.approx(2000 / 3600)]


def test_without_a_sample_the_draw_is_not_known_and_nothing_is_guessed() -> None:
    assert shares([], [Span(0.0, 1.0), Span(1.0, 2.0)]) == [None, None]
    assert drawn_while_running([], [Span(0.0, 1.0)]) == 0.0


times = st.floats(min_value=0, max_value=1000, allow_nan=False)


@given(st.lists(st.tuples(times, st.floats(min_value=0, max_value=600)), min_size=1,
                max_size=12),
       st.lists(st.tuples(times, times), max_size=8))
def test_the_shares_add_up_to_the_energy_drawn_while_requests_ran(
        samples: list[tuple[float, float]], spans: list[tuple[float, float]]) -> None:
    measured = [Sample(t, w) for t, w in samples]
    requests = [Span(min(a, b), max(a, b)) for a, b in spans]
    each = shares(measured, requests)
    assert all(s is not None and s >= 0 for s in each)
    assert math.isclose(sum(s or 0.0 for s in each), drawn_while_running(measured, requests),
                        rel_tol=1e-9, abs_tol=1e-9)
