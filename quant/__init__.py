"""Research and batch layer: config, CLI, pipelines, evaluation, backtests, reports, jobs."""
