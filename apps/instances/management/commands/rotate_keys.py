"""`manage.py rotate_keys`: re-encrypt every stored secret with the first FIELD_ENCRYPTION_KEY.

Put the new key first in FIELD_ENCRYPTION_KEY (comma-separated), keep the old ones after it, run this, then
drop the old keys.
"""

from __future__ import annotations

from cryptography.fernet import InvalidToken
from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from apps.core import fields


class Command(BaseCommand):
    help = "Re-encrypt every encrypted field with the newest FIELD_ENCRYPTION_KEY."

    def handle(self, *args, **opts):
        fields._fernet.cache_clear()  # pick up the keys as configured now
        total = 0
        with transaction.atomic():
            for model in apps.get_models():
                for field in model._meta.concrete_fields:
                    if isinstance(field, fields.EncryptedTextField):
                        total += self._rotate(model, field)
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {total} secret(s) with the first key."))

    def _rotate(self, model, field) -> int:
        # Raw SQL: the field would decrypt on read and we want the stored ciphertext.
        table = connection.ops.quote_name(model._meta.db_table)
        column = connection.ops.quote_name(field.column)
        pk = connection.ops.quote_name(model._meta.pk.column)
        count = 0
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {pk}, {column} FROM {table} WHERE {column} <> ''")  # noqa: S608
            rows = cursor.fetchall()
            for row_pk, stored in rows:
                try:
                    rotated = fields.rotate(stored)
                except InvalidToken:
                    raise CommandError(
                        f"{model._meta.label} {row_pk} {field.name}: no configured key decrypts it; nothing was changed"
                    ) from None
                cursor.execute(f"UPDATE {table} SET {column} = %s WHERE {pk} = %s", [rotated, row_pk])  # noqa: S608
                count += 1
        return count
