from django.apps import AppConfig


class BacktestConfig(AppConfig):
    """Backtests of draft definitions: an app of its own (label ``backtest``) so its tables and
    migrations stay apart from the scoring engine's."""

    name = "scoring.backtest"
    label = "backtest"
    verbose_name = "Backtests"
