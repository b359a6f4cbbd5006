"""Operations: metrics, health, tracing and the operator's command line."""
