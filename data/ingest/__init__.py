"""Loaders for prices, news and SEC filings: idempotent, one transaction per file, rejects kept."""

from data.ingest.batch import ingest_files
from data.ingest.filings import ingest_filings, parse_filing
from data.ingest.news import ingest_news
from data.ingest.prices import ingest_prices
from data.ingest.source import IngestResult

__all__ = ["IngestResult", "ingest_files", "ingest_filings", "ingest_news", "ingest_prices",
           "parse_filing"]
