from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser

from septrader.api.permissions import ROLES
from septrader.services import audit_record


class Command(BaseCommand):
    help = (
        "Give a user one API role (viewer, operator or admin), replacing the role it had; "
        "'none' removes every role. Superusers are admin whatever their groups."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("role", choices=[*ROLES, "none"])

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        try:
            user = user_model.objects.get(username=options["username"])
        except user_model.DoesNotExist:
            raise CommandError(f"username={options['username']!r} is not a known user.") from None
        groups = {group.name: group for group in Group.objects.filter(name__in=ROLES)}
        missing = set(ROLES) - set(groups)
        if missing:
            raise CommandError(
                f"the role groups {', '.join(sorted(missing))} are missing; "
                "run `manage.py migrate`."
            )
        previous = [group.name for group in user.groups.filter(name__in=ROLES)]
        user.groups.remove(*groups.values())
        if options["role"] != "none":
            user.groups.add(groups[options["role"]])
        audit_record(
            actor="system:manage.py",
            action="user.role",
            target=user.get_username(),
            details={"from": previous, "to": options["role"]},
        )
        self.stdout.write(f"user={user.get_username()} role={options['role']}")
