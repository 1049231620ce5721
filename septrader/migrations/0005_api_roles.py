"""The API roles as groups: viewer, operator and admin, each with its permission and those of
the roles below it (septrader/api/permissions.py)."""

from typing import Any

from django.db import migrations

ROLES = [
    ("viewer", ["api_read"]),
    ("operator", ["api_read", "api_control"]),
    ("admin", ["api_read", "api_control", "api_admin"]),
]
PERMISSIONS = {
    "api_read": "Can read the API",
    "api_control": "Can control trading through the API",
    "api_admin": "Can change configuration and read the audit log through the API",
}


def create_roles(apps: Any, schema_editor: Any) -> None:
    # Permissions are normally created after all migrations ran; these groups need them now.
    content_type_model = apps.get_model("contenttypes", "ContentType")
    permission_model = apps.get_model("auth", "Permission")
    group_model = apps.get_model("auth", "Group")
    content_type, _ = content_type_model.objects.get_or_create(
        app_label="septrader", model="auditlog"
    )
    permissions = {
        codename: permission_model.objects.get_or_create(
            content_type=content_type, codename=codename, defaults={"name": name}
        )[0]
        for codename, name in PERMISSIONS.items()
    }
    for role, codenames in ROLES:
        group, _ = group_model.objects.get_or_create(name=role)
        group.permissions.add(*(permissions[codename] for codename in codenames))


def drop_roles(apps: Any, schema_editor: Any) -> None:
    apps.get_model("auth", "Group").objects.filter(name__in=[r for r, _ in ROLES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("septrader", "0004_sync_import"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="auditlog",
            options={
                "ordering": ["-time", "-id"],
                "permissions": [
                    ("api_read", "Can read the API"),
                    ("api_control", "Can control trading through the API"),
                    (
                        "api_admin",
                        "Can change configuration and read the audit log through the API",
                    ),
                ],
            },
        ),
        migrations.RunPython(create_roles, drop_roles),
    ]
