"""Notification mails: the events people asked to hear of (``events``), queued in an outbox in the
transaction of their event and sent after it commits (``outbox``); ``cli.py`` adds
``offline-service notify`` for a timer to run."""
