"""Operations: Prometheus metrics, structured JSON logs with request ids, source health."""
