from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand

from leads.demo.generator import DEMO_USERNAMES

# What the demo team may do beyond a plain login (roles proper come with the roles issue).
DEMO_PERMISSIONS = {"manager.sam": [("leads", "manage_handoffs")]}


class Command(BaseCommand):
    help = (
        "Create (or reset) the demo superuser of the embedded run, give the seeded demo team "
        "(reps, manager, marketers) the same password, and print the credentials."
    )

    def handle(self, *args, **options):
        username = settings.DEMO_ADMIN_USERNAME
        password = settings.DEMO_ADMIN_PASSWORD
        users = get_user_model().objects
        user, created = users.get_or_create(
            username=username, defaults={"email": f"{username}@example.com"}
        )
        user.is_staff = user.is_superuser = user.is_active = True
        user.set_password(password)
        user.save()
        verb = "Created" if created else "Reset"
        self.stdout.write(
            self.style.SUCCESS(f"{verb} demo admin — username: {username}  password: {password}")
        )
        team = list(users.filter(username__in=DEMO_USERNAMES))
        for member in team:
            member.set_password(password)
            member.save(update_fields=["password"])
            for app_label, codename in DEMO_PERMISSIONS.get(member.username, []):
                member.user_permissions.add(
                    Permission.objects.get(content_type__app_label=app_label, codename=codename)
                )
        if team:
            names = ", ".join(sorted(member.username for member in team))
            self.stdout.write(f"Demo team logins (same password): {names}")
