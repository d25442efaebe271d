from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand

from leads.demo.generator import USERS
from leads.roles import LONG_SESSION, MARKETING, REVOPS_ADMIN, SALES_MANAGER, SALES_REP, VIEWER

# The seeded team's roles (leads.demo.generator.USERS) as groups.
DEMO_ROLE_GROUPS = {
    "rep": SALES_REP,
    "sdr": SALES_REP,
    "manager": SALES_MANAGER,
    "marketer": MARKETING,
}
# Demo accounts for the roles the seeded team has none of: (username, first, last, group,
# extra permissions). The meeting-room screen stays signed in for days.
DEMO_EXTRA_USERS = (
    ("ops.morgan", "Morgan", "Ellis", REVOPS_ADMIN, ()),
    ("exec.taylor", "Taylor", "Brooks", VIEWER, ()),
    ("meeting.room", "Meeting", "Room", VIEWER, (LONG_SESSION,)),
)


class Command(BaseCommand):
    help = (
        "Create (or reset) the demo superuser of the embedded run, give the seeded demo team "
        "(reps, manager, marketers) their roles and the same password, add a RevOps admin, an "
        "executive viewer and the meeting-room account, and print the credentials."
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
        groups = {group.name: group for group in Group.objects.all()}
        roles = {name: DEMO_ROLE_GROUPS[role] for name, role, _first, _last in USERS}
        team = list(users.filter(username__in=roles))
        for member in team:
            member.set_password(password)
            member.save(update_fields=["password"])
            member.groups.add(groups[roles[member.username]])
        for name, first, last, role, perms in DEMO_EXTRA_USERS:
            member, _ = users.get_or_create(
                username=name,
                defaults={"first_name": first, "last_name": last, "email": f"{name}@example.com"},
            )
            member.set_password(password)
            member.save(update_fields=["password"])
            member.groups.add(groups[role])
            for perm in perms:
                app_label, codename = perm.split(".")
                member.user_permissions.add(
                    Permission.objects.get(content_type__app_label=app_label, codename=codename)
                )
            team.append(member)
        lines = [
            f"  {member.username:<16} {', '.join(g.name for g in member.groups.all())}"
            for member in sorted(team, key=lambda member: member.username)
        ]
        self.stdout.write("Demo logins (same password), by role:\n" + "\n".join(lines))
