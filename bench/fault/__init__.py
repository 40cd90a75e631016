"""Parts of the reminders fault test (``bench/fault_reminders.py``).

- ``servers``: private PostgreSQL, Redis, SMTP sink and Celery workers, each a
  process of its own that the test may kill, restart and always cleans up;
- ``sink``: the SMTP sink, run as ``python -m bench.fault.sink``;
- ``run``: one run (normal or early-ack) against fresh private servers.
"""
