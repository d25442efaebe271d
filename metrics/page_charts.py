"""Which charts each dashboard page shows, built from that page's KPI reads."""


def funnel(data: dict, drill_url) -> dict:
    return {}


def handoffs(data: dict, drill_url) -> dict:
    return {}


def pipeline(data: dict, drill_url) -> dict:
    return {}


def content(data: dict, drill_url) -> dict:
    return {}
