"""Market data: the canonical schema, the Parquet store and the sources that fill it."""

from dynmix.data.schema import META_SCHEMA, PRICE_SCHEMA, validate_meta, validate_prices
from dynmix.data.store import Store

__all__ = ["META_SCHEMA", "PRICE_SCHEMA", "Store", "validate_meta", "validate_prices"]
