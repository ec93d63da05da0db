"""The warehouse: DuckDB schema and migrations, ingestion, trading calendar, samples, search."""

from data.errors import DataError, FrameworkError
from data.warehouse import Warehouse

__all__ = ["DataError", "FrameworkError", "Warehouse"]
