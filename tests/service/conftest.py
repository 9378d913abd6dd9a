"""In-process tests of the service code on the real Redis (127.0.0.1:6379), under a prefix."""
