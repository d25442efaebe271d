"""What the benches share: a percentile of timings and a timed page request."""

import time


def percentile(values: list[float], share: float) -> float:
    """The value at ``share`` (0–1) of the sorted timings, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def timed_get(client, url: str) -> float:
    """Milliseconds a Django test client takes to answer ``url`` with 200."""
    started = time.perf_counter()
    response = client.get(url)
    took = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, (url, response.status_code)
    return took
