"""KPI reads shared within a scope (a refresh round, a dashboard request): no database."""

from metrics.queries.shared import reads_shared, shared_read

calls: list[tuple] = []


@shared_read
def read(period, filters=(), *, now=None):
    calls.append((period, filters, now))
    return len(calls)


def setup_function():
    calls.clear()


def test_outside_a_scope_every_read_runs():
    assert [read("march"), read("march")] == [1, 2]


def test_in_a_scope_a_read_runs_once_however_its_arguments_are_spelled():
    with reads_shared() as reads:
        results = {read("march"), read("march", ()), read(period="march"), read("march", now=None)}
        assert results == {1}
        assert read("april") == 2  # other arguments: another read
    assert reads.shared == 3
    assert read("march") == 3  # the scope is over


def test_a_nested_scope_is_the_outer_one():
    with reads_shared() as outer:
        read("march")
        with reads_shared() as inner:
            assert inner is outer
            read("march")
    assert (len(calls), outer.shared) == (1, 1)


def test_an_argument_that_cannot_be_hashed_is_read_each_time():
    with reads_shared() as reads:
        read("march", ["a list"])
        read("march", ["a list"])
    assert (len(calls), reads.shared) == (2, 0)
