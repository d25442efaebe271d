"""Importing sales reps and their teams from a CSV file (issue 14): reps and managers matched
to users like owners (or created inactive), territory, tiers, capacity and the manager whose
team they are on; row errors like every import; a rejected file and a re-import change
nothing."""

import csv
import io

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from leads.imports.engine import COMMITTED, REJECTED, import_file, mapping_context
from leads.imports.mapping import SALES_REPS, Mapping, guess_mapping
from leads.models import ImportJob, SalesRep
from leads.roles import MARKETING, REVOPS_ADMIN
from leads.services.team import RepValues, sales_reps_upsert
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

User = get_user_model()

# A hand-made export: reps by e-mail, username or name; managers by name or e-mail, one of
# them named before their own row (Mia leads a team and is on Olga's, Olga known by e-mail).
HEADER = ["Email", "Full Name", "Team", "Territory", "Tiers", "Capacity"]
ROWS = [
    ["ada@example.com", "Ada Lovelace", "Mia Manager", "North America", "A; B", "12"],
    ["new.rep@example.com", "Nina Newman", "Mia Manager", "EMEA", "", ""],
    ["bob", "", "olga@example.com", "", "tier c", "5"],
    ["Mia Manager", "", "olga@example.com", "", "", ""],
]
FIELDS = {
    "rep": "Email",
    "name": "Full Name",
    "manager": "Team",
    "region": "Territory",
    "tiers": "Tiers",
    "capacity": "Capacity",
}


def write_csv(tmp_path, rows, header=HEADER, name="reps.csv"):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows([header, *rows])
    path = tmp_path / name
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def reps_mapping(fields=FIELDS, **options) -> Mapping:
    options = {"create_owners": True, **options}
    return Mapping.from_json({"kind": SALES_REPS, "fields": fields, "options": options})


@pytest.fixture
def people():
    """Users the database knows: Ada (by e-mail), Bob (by username), Mia (a manager by name,
    active); Olga, a manager named by e-mail, is new."""
    return {
        "ada": UserFactory(username="ada", email="ada@example.com", first_name="Ada",
                           last_name="Lovelace"),
        "bob": UserFactory(username="bob", email="bob@example.com", first_name="Bob",
                           last_name="Baker"),
        "mia": UserFactory(username="mia", email="mia@example.com", first_name="Mia",
                           last_name="Manager"),
    }  # fmt: skip


def teams() -> dict[str, tuple]:
    """Every rep: (manager's username, region, tiers, capacity, active user?)."""
    return {
        rep.user.username: (
            rep.manager.username if rep.manager else None,
            rep.region,
            rep.tiers,
            rep.capacity,
            rep.user.is_active,
        )
        for rep in SalesRep.objects.select_related("user", "manager")
    }


def test_reps_land_on_their_managers_teams(tmp_path, people):
    report = import_file(path=write_csv(tmp_path, ROWS), mapping=reps_mapping())
    assert report.status == COMMITTED, report.errors
    assert (report.created, report.updated, report.unchanged) == (4, 0, 0)
    # Nina (by e-mail, named by the file) and Olga (a manager by e-mail) are new, inactive.
    assert report.created_refs == {"users": 2}
    assert teams() == {
        "ada": ("mia", "NA", ["A", "B"], 12, True),
        "new.rep@example.com": ("mia", "EMEA", [], 40, False),
        "bob": ("olga@example.com", "", ["C"], 5, True),
        "mia": ("olga@example.com", "", [], 40, True),
    }
    nina = User.objects.get(email="new.rep@example.com")
    assert (nina.get_full_name(), nina.has_usable_password()) == ("Nina Newman", False)


def test_reimporting_the_file_changes_nothing(tmp_path, people):
    path = write_csv(tmp_path, ROWS)
    import_file(path=path, mapping=reps_mapping())
    before, users = teams(), User.objects.count()
    again = import_file(path=path, mapping=reps_mapping())
    assert again.status == COMMITTED
    assert (again.created, again.updated, again.unchanged) == (0, 0, 4)
    assert again.created_refs == {}
    assert teams() == before and User.objects.count() == users


def test_a_second_file_moves_a_rep_and_keeps_what_its_blank_cells_do_not_say(tmp_path, people):
    import_file(path=write_csv(tmp_path, ROWS), mapping=reps_mapping())
    moved = [["ada@example.com", "", "bob", "", "", "20"], ["bob", "", "Zed Zimmer", "", "", ""]]
    report = import_file(path=write_csv(tmp_path, moved, name="moved.csv"), mapping=reps_mapping())
    assert (report.created, report.updated, report.unchanged) == (0, 2, 0)
    assert report.created_refs == {"users": 1}  # Zed, a new manager
    assert teams()["ada"] == ("bob", "NA", ["A", "B"], 20, True)
    assert teams()["bob"] == ("zed.zimmer", "", ["C"], 5, True)


def test_a_rejected_file_changes_nothing_and_names_each_problem(tmp_path, people):
    rows = [
        *ROWS,
        ["ada@example.com", "", "", "", "", ""],  # twice
        ["mia", "", "Mia Manager", "", "", ""],  # her own manager (by username and by name)
        ["carl@example.com", "", "", "", "", "0"],
        ["dan@example.com", "", "", "Mars", "A; E", ""],
    ]
    users = User.objects.count()
    report = import_file(path=write_csv(tmp_path, rows), mapping=reps_mapping())
    assert report.status == REJECTED
    assert not SalesRep.objects.exists() and User.objects.count() == users
    problems = {(error.row, error.field): error.message for error in report.errors}
    assert set(problems) == {(6, "rep"), (7, "rep"), (7, "manager"), (8, "capacity"),
                             (9, "region"), (9, "tiers")}  # fmt: skip
    assert problems[(6, "rep")] == "appears twice in the file (first on row 2)"
    assert "own manager" in problems[(7, "manager")]
    assert "greater than or equal to 1" in problems[(8, "capacity")]
    assert "'E'" in problems[(9, "tiers")]
    assert report.created_refs == {} and report.created == 0


def test_unknown_people_are_errors_unless_creating_them_is_allowed(tmp_path, people):
    report = import_file(path=write_csv(tmp_path, ROWS), mapping=reps_mapping(create_owners=False))
    assert report.status == REJECTED
    assert {(error.row, error.field) for error in report.errors} == {
        (3, "rep"),  # new.rep@example.com
        (4, "manager"),  # olga@example.com
        (5, "manager"),
    }


def test_skipping_invalid_rows_stores_the_others(tmp_path, people):
    rows = [ROWS[0], ["ada2@example.com", "", "", "", "", "-3"]]
    report = import_file(path=write_csv(tmp_path, rows), mapping=reps_mapping(), skip_invalid=True)
    assert report.status == COMMITTED and report.skipped == 1
    assert set(teams()) == {"ada"}


def test_an_existing_rep_is_an_error_when_updating_is_off(tmp_path, people):
    SalesRep.objects.create(user=people["ada"])
    report = import_file(
        path=write_csv(tmp_path, ROWS[:1]), mapping=reps_mapping(update_existing=False)
    )
    assert report.status == REJECTED
    assert [(e.row, e.field) for e in report.errors] == [(2, "rep")]
    assert "updating is off" in report.errors[0].message


GUESSES = [
    # (header, the field each column is guessed for)
    (["sales_agent", "manager", "regional_office"], ["rep", "manager", "region"]),
    (["Owner", "Team", "Territory"], ["rep", "manager", "region"]),
    (["Full Name", "Email", "Sales Manager", "Capacity"], ["name", "rep", "manager", "capacity"]),
    (["Name", "Reports To", "Tiers"], ["rep", "manager", "tiers"]),
]


@pytest.mark.parametrize(("header", "fields"), GUESSES)
def test_common_headers_are_guessed(header, fields):
    mapping = guess_mapping(SALES_REPS, header, [], mapping_context())
    assert {name: spec.column for name, spec in mapping.fields} == dict(
        zip(fields, header, strict=True)
    )


def test_the_bulk_write_refuses_a_rep_managing_themselves(people):
    ada = people["ada"].pk
    with pytest.raises(ValidationError) as refused:
        sales_reps_upsert(actor_id=None, reps=[RepValues(ada, {"manager_id": ada})])
    assert "own manager" in str(refused.value)
    assert not SalesRep.objects.exists()


@pytest.mark.parametrize(("role", "allowed"), [(MARKETING, False), (REVOPS_ADMIN, True)])
def test_only_who_may_change_reps_imports_them(client, settings, tmp_path, role, allowed):
    settings.MEDIA_ROOT = tmp_path / "media"
    client.force_login(UserFactory(role=role))
    text = "sales_agent,manager\r\nAnn Archer,Mia Manager\r\n"
    response = client.post(
        "/leads/imports/",
        {"kind": SALES_REPS, "file": SimpleUploadedFile("teams.csv", text.encode())},
    )
    assert ImportJob.objects.exists() is allowed
    if not allowed:
        assert response.status_code == 200
        assert "needs the permission to add and change sales reps" in response.content.decode()
