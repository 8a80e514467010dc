"""Key-value stores: one adapter interface, a Redis adapter, and a lossless JSON Lines export."""
