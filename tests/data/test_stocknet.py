import polars as pl

from data.ingest import ingest_news, ingest_prices
from tests.conftest import dataset


def test_stocknet_prices_and_posts_ingest_whole(wh):
    prices = dataset("stocknet", "prices.parquet")
    tweets = dataset("stocknet", "tweets_2014.parquet")
    result = ingest_prices(wh, prices, source="stocknet")
    assert (result.read, result.inserted, result.rejected) == (108_589, 108_589, 0)
    assert wh.scalar("SELECT count(DISTINCT ticker) FROM prices") == 88

    posts = ingest_news(wh, tweets, source="twitter")
    assert posts.read == 51_105 and posts.rejected == 0
    assert posts.inserted + posts.duplicate == 51_105
    # Every (ticker, post) of the source is kept: a post filed under several tickers is one
    # document that lists them all.
    source = pl.read_parquet(tweets)
    pairs = wh.scalar("SELECT count(*) FROM (SELECT DISTINCT unnest(tickers), doc_id "
                      "FROM documents)")
    distinct_pairs = source.with_columns(pl.col("text").str.to_lowercase()).unique(
        ["ticker", "text"]).height
    assert pairs == distinct_pairs
    assert wh.scalar("SELECT count(*) FROM documents WHERE len(tickers) = 0") == 0
    assert set(wh.query("SELECT DISTINCT unnest(tickers) AS t FROM documents")["t"]) == set(
        source["ticker"].unique())
