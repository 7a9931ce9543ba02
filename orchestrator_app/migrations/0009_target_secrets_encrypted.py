"""Targets' secrets encrypted at rest (the stored plain text becomes Fernet tokens), and
their URLs http(s) only."""

import django.core.validators
from django.db import migrations, models

import clawdbot.encryption
from clawdbot.encryption import decrypt, encrypt

_FIELDS = ("legacy_secrets", "webhook_secrets")
_TOKEN_PREFIX = "gAAAAA"  # every Fernet token (version byte 0x80) starts so


def _convert(apps, schema_editor, change):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT id, legacy_secrets, webhook_secrets FROM orchestrator_target "
                       "FOR UPDATE")
        for pk, *values in cursor.fetchall():
            new = [change(v) if v else v for v in values]
            if new != values:
                cursor.execute("UPDATE orchestrator_target SET legacy_secrets = %s, "
                               "webhook_secrets = %s WHERE id = %s", [*new, pk])


def forwards(apps, schema_editor):
    _convert(apps, schema_editor,
             lambda v: v if v.startswith(_TOKEN_PREFIX) else encrypt(v))


def backwards(apps, schema_editor):
    _convert(apps, schema_editor,
             lambda v: decrypt(v) if v.startswith(_TOKEN_PREFIX) else v)


class Migration(migrations.Migration):

    dependencies = [
        ('orchestrator_app', '0008_delivery_target_due'),
    ]

    operations = [
        migrations.AlterField(
            model_name='target',
            name='url',
            field=models.URLField(blank=True, help_text="Ingest URL; empty on 'default' means MILESTONE_INGEST_URL.", max_length=500, validators=[django.core.validators.URLValidator(message='Enter an http:// or https:// URL.', schemes=['http', 'https'])]),
        ),
        migrations.AlterField(
            model_name='target',
            name='legacy_secrets',
            field=clawdbot.encryption.EncryptedTextField(blank=True, help_text='Comma-separated; the first signs. Empty: MILESTONE_SIGNING_SECRET.'),
        ),
        migrations.AlterField(
            model_name='target',
            name='webhook_secrets',
            field=clawdbot.encryption.EncryptedTextField(blank=True, help_text='Comma-separated whsec_…; the first signs. Empty: MILESTONE_WEBHOOK_SECRET.'),
        ),
        migrations.RunPython(forwards, backwards),
    ]
