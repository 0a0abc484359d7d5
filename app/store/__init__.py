"""Per-user rolling event windows: the interface the service uses (`window_store`) and its
Redis backend (`redis_store`), with the key layout and the member codec they share."""
