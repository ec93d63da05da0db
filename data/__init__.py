"""The warehouse: DuckDB schema and migrations, ingestion, trading calendar, samples, search."""

from data.errors import DataError, QuantError
from data.warehouse import Warehouse

__all__ = ["DataError", "QuantError", "Warehouse"]
