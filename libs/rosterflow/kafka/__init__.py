"""Kafka wiring, one module per concern.

``broker`` (the broker, the subscribers' decoder, topic and group names),
``admin`` (topic creation), ``publishing`` (``Publisher``), ``retry`` (which
failures are transient, and retrying them), ``offsets`` (batched offset
commits), ``dead_letters`` (the letter and the dead-letter limit),
``ledger`` (what the consume loop asks of the database) and ``consuming``
(``Consumer``, the consume contract every service relies on).
"""
