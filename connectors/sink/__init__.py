"""The ESP sink: abandonment triggers in, one offer e-mail each out, exactly once in effect.

Pure parts (providers' request shapes, failure classification, back-off, the
circuit breaker, the rate limiter, per-customer lanes, offset tracking) are
plain code tested without I/O; the edges (Kafka, the ops database, HTTP) are
thin and tested against the real stack and the ESP sandbox.
"""
