"""Runs and reports: running and storing a backtest with its evaluation, the HTML report and
its figures, the index page, and the first screen in words."""
