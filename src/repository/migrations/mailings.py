"""Schema of the mailings area: clients, mailings, and one message per (mailing, client)."""

from __future__ import annotations

import peewee


def _initial_schema(migrator, db: peewee.Database) -> None:
    class Base(peewee.Model):
        class Meta:
            database = db

    class MailingClient(Base):
        phone = peewee.CharField(max_length=11, unique=True)
        operator_code = peewee.CharField(max_length=3, index=True)
        tag = peewee.CharField(max_length=64, null=True, index=True)
        timezone = peewee.CharField(max_length=64)

        class Meta:
            table_name = "mailing_clients"

    class Mailing(Base):
        start_time = peewee.DateTimeField(index=True)  # naive UTC, as every time below
        end_time = peewee.DateTimeField(index=True)
        text = peewee.TextField()
        client_operator_code_filter = peewee.CharField(max_length=3, null=True)
        client_tag_filter = peewee.CharField(max_length=64, null=True)
        send_window_start = peewee.CharField(max_length=5, null=True)  # HH:MM, the client's local time
        send_window_end = peewee.CharField(max_length=5, null=True)
        created_at = peewee.DateTimeField()

        class Meta:
            table_name = "mailings"

    class MailingMessage(Base):
        mailing = peewee.ForeignKeyField(Mailing, column_name="mailing_id", on_delete="CASCADE")
        # A deleted client's sent or expired messages stay in the statistics without it.
        client = peewee.ForeignKeyField(MailingClient, column_name="client_id", null=True, on_delete="SET NULL")
        status = peewee.CharField(max_length=8)
        attempts = peewee.IntegerField(default=0)
        last_error = peewee.TextField(null=True)
        phone = peewee.CharField(max_length=11, null=True)  # the number it was last sent to
        created_at = peewee.DateTimeField()
        next_attempt_at = peewee.DateTimeField()
        last_attempt_at = peewee.DateTimeField(null=True)
        sent_at = peewee.DateTimeField(null=True)
        # A worker's claim: nobody else sends the message until claim_expires_at.
        claim_token = peewee.CharField(max_length=64, null=True)
        claim_expires_at = peewee.DateTimeField(null=True)

        class Meta:
            table_name = "mailing_messages"
            indexes = ((("mailing", "client"), True), (("mailing", "status"), False))
            constraints = [peewee.SQL("CHECK (status IN ('PENDING', 'SENT', 'FAILED', 'EXPIRED'))")]

    db.create_tables([MailingClient, Mailing, MailingMessage])
    db.execute_sql(
        "CREATE INDEX mailing_messages_due ON mailing_messages (next_attempt_at) WHERE status IN ('PENDING', 'FAILED')"
    )


MIGRATIONS = [
    ("mailings_0001_clients_mailings_messages", _initial_schema),
]
