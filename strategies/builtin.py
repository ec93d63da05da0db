"""The built-in strategies (an explicit list, not string module paths)."""

from strategies.buy_and_hold import BuyAndHold
from strategies.event_drift import EventDrift
from strategies.learned import LEARNED
from strategies.sentiment_long_short import SentimentLongShort
from strategies.sentiment_momentum import SentimentMomentum

BUILTIN = (SentimentLongShort(), EventDrift(), SentimentMomentum(), BuyAndHold(), LEARNED)
