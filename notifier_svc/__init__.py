"""notifier_svc: consumes `mp3` (ConversionFinished) and emails the job's owner, once.

Modules: `config` (environment), `smtp_url` (the SMTP_URL forms), `compose` (the message),
`transport` (SMTP conversation, failure classification, retries), `handler` (claim → send →
record → ack), `server` (wiring, health, shutdown), `__main__` (`python -m notifier_svc`).
"""
