"""The shared target-account list: reading a pasted list (pure), the draft → publish services,
the import that refuses bad input and changes nothing, the pages and who may use them, the lead
page's badge and the lead list's filter."""

from datetime import UTC, datetime, timedelta

import pytest
from auditlog.models import LogEntry
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from leads.models import TargetAccount, TargetAccountListVersion
from leads.roles import MARKETING, REVOPS_ADMIN, SALES_REP, VIEWER
from leads.target_accounts import selectors, services
from leads.target_accounts.imports import parse_lines
from tests.factories import AccountFactory, LeadFactory, UserFactory

# --- Reading a pasted list (no database) -------------------------------------------------------


def test_a_line_is_a_domain_or_a_name_with_an_optional_tier_and_note():
    lines, problems = parse_lines(
        "# agreed at the QBR\n"
        "https://WWW.Acme.com/about, 1, Ana runs the play\n"
        "\n"
        '"Globex, Inc.", tier 2\n'
        "Initech   Corp ,T3\n"
    )
    assert problems == []
    assert [(ln.number, ln.key, ln.is_domain, ln.tier, ln.note) for ln in lines] == [
        (2, "acme.com", True, "1", "Ana runs the play"),
        (4, "Globex, Inc.", False, "2", ""),
        (5, "Initech Corp", False, "3", ""),
    ]


def test_every_bad_line_is_named():
    lines, problems = parse_lines("acme.com, 4\n, 1\nglobex.com, 1, note, more")
    assert problems == [
        "Line 1: unknown tier '4': use 1, 2 or 3 (or leave it out).",
        "Line 2: no account: start the line with a domain or a name.",
        "Line 3: too many commas: write the account, its tier and a note (quote a name "
        'holding a comma: "Acme, Inc.").',
    ]
    assert lines == []


def test_an_empty_paste_is_refused():
    assert parse_lines("\n# only a comment\n")[1] == [
        "Nothing to import: paste one account (domain or name) a line."
    ]


# --- Services: draft, import, publish ----------------------------------------------------------


@pytest.fixture
def accounts(db):
    return {
        "acme": AccountFactory(name="Acme", domain="acme.com"),
        "globex": AccountFactory(name="Globex", domain="globex.com"),
        "initech": AccountFactory(name="Initech", domain="initech.com"),
    }


@pytest.fixture
def ops(db):
    return UserFactory(username="ops.lists", role=REVOPS_ADMIN)


def published(text: str, *, actor=None, at: datetime | None = None) -> TargetAccountListVersion:
    draft = services.target_list_draft(actor=actor)
    services.target_accounts_import(draft=draft, text=text)
    return services.target_list_publish(draft=draft, actor=actor, effective_from=at)


def test_import_adds_accounts_by_domain_or_name_and_updates_those_already_on(accounts, ops):
    draft = services.target_list_draft(actor=ops)
    first = services.target_accounts_import(draft=draft, text="acme.com, 1\nglobex", actor=ops)
    assert (first.added, first.updated) == (2, 0)
    again = services.target_accounts_import(
        draft=draft, text="ACME.com, 2, Ana owns it\nglobex.com", actor=ops
    )
    assert (again.added, again.updated) == (0, 1)
    rows = {row.account.name: (row.tier, row.note) for row in draft.accounts.all()}
    assert rows == {"Acme": ("2", "Ana owns it"), "Globex": ("", "")}


def test_a_bad_import_is_refused_whole_and_changes_nothing(accounts, ops):
    draft = services.target_list_draft(actor=ops)
    services.target_accounts_import(draft=draft, text="acme.com, 1", actor=ops)
    AccountFactory(name="Twin", domain="twin-a.com")
    AccountFactory(name="twin", domain="twin-b.com")
    with pytest.raises(ValidationError) as refused:
        services.target_accounts_import(
            draft=draft,
            text="acme.com, 3\nglobex.com\nunknown.example\nTwin\nNobody Inc\nglobex",
            actor=ops,
        )
    assert refused.value.messages == [
        "Line 3: no account has the domain 'unknown.example'.",
        "Line 4: 2 accounts have the name 'Twin': write its domain instead.",
        "Line 5: no account has the name 'Nobody Inc'.",
        "Line 6: Globex is already on line 2.",
    ]
    rows = list(draft.accounts.values_list("account__name", "tier"))
    assert rows == [("Acme", "1")]  # neither Globex added nor Acme's tier changed


def test_publishing_puts_the_list_in_force_and_freezes_it(accounts, ops):
    version = published("acme.com\nglobex.com", actor=ops)
    assert selectors.list_in_force() == version
    assert version.published_by == ops
    with pytest.raises(ValidationError, match="is published and cannot be edited"):
        services.target_accounts_import(draft=version, text="initech.com")
    with pytest.raises(ValidationError):
        TargetAccount.objects.get(version=version, account=accounts["acme"]).delete()
    assert version.accounts.count() == 2


def test_a_new_draft_copies_the_list_in_force_and_publishing_it_supersedes_it(accounts, ops):
    first = published("acme.com, 1\nglobex.com", actor=ops, at=timezone.now() - timedelta(days=1))
    draft = services.target_list_draft(actor=ops)
    assert draft.number == first.number + 1
    assert sorted(draft.accounts.values_list("account__name", "tier")) == [
        ("Acme", "1"),
        ("Globex", ""),
    ]
    assert services.target_list_draft(actor=ops) == draft  # the same draft until published
    services.target_accounts_remove(draft=draft, account_ids=[accounts["acme"].pk])
    services.target_accounts_import(draft=draft, text="initech.com")
    second = services.target_list_publish(draft=draft, actor=ops)
    assert selectors.list_in_force() == second
    assert selectors.list_in_force(at=second.effective_from - timedelta(hours=1)) == first
    assert sorted(first.accounts.values_list("account__name", flat=True)) == ["Acme", "Globex"]


def test_removing_an_account_not_on_the_draft_is_refused(accounts, ops):
    draft = services.target_list_draft(actor=ops)
    services.target_accounts_import(draft=draft, text="acme.com")
    with pytest.raises(ValidationError):
        services.target_accounts_remove(
            draft=draft, account_ids=[accounts["acme"].pk, accounts["globex"].pk]
        )
    assert draft.accounts.count() == 1


def test_an_empty_list_cannot_be_published(db, ops):
    draft = services.target_list_draft(actor=ops)
    with pytest.raises(ValidationError, match="needs at least one account"):
        services.target_list_publish(draft=draft, actor=ops)


def test_who_agreed_when_is_in_the_audit_trail(accounts, ops):
    version = published("acme.com", actor=ops)
    entries = LogEntry.objects.filter(additional_data__definition="target-accounts")
    events = {entry.additional_data.get("event") for entry in entries}
    assert {"draft_created", "published"} <= events
    publish = entries.get(additional_data__event="published")
    assert publish.actor == ops
    assert f"Published v{version.number}" in publish.additional_data["summary"]


def test_a_period_is_counted_under_the_list_in_force_at_its_end_or_now(accounts, ops):
    january = datetime(2026, 1, 10, tzinfo=UTC)
    march = datetime(2026, 3, 10, tzinfo=UTC)
    first = published("acme.com", actor=ops, at=january)
    second = published("globex.com", actor=ops, at=march)
    february_end = datetime(2026, 3, 1, tzinfo=UTC)
    assert selectors.list_for_period(february_end, now=datetime(2026, 5, 1, tzinfo=UTC)) == first
    # A running period: the list in force now, not at its (future) end.
    april_end = datetime(2026, 5, 1, tzinfo=UTC)
    assert selectors.list_for_period(april_end, now=march - timedelta(days=1)) == first
    assert selectors.list_for_period(april_end, now=march + timedelta(days=1)) == second
    # A version taking force exactly at the end belongs to the next period.
    assert selectors.list_for_period(march, now=april_end) == first


# --- Pages and permissions ---------------------------------------------------------------------


def login(client, role: str):
    user = UserFactory(username=f"user-{role.lower().replace(' ', '-')}", role=role)
    client.force_login(user)
    return user


@pytest.mark.parametrize("role", [VIEWER, MARKETING, SALES_REP, REVOPS_ADMIN])
def test_everyone_signed_in_reads_the_list(client, accounts, ops, role):
    published("acme.com, 1, Ana\nglobex.com", actor=ops)
    login(client, role)
    response = client.get(reverse("target_accounts:list"))
    assert response.status_code == 200
    assert "Acme" in response.text and "Globex" in response.text
    assert ("Change the list" in response.text) == (role == REVOPS_ADMIN)


@pytest.mark.parametrize("role", [VIEWER, MARKETING, SALES_REP])
def test_only_revops_admins_edit(client, accounts, role):
    login(client, role)
    assert client.get(reverse("target_accounts:edit")).status_code == 403
    posted = client.post(reverse("target_accounts:edit"), {"action": "import", "lines": "acme.com"})
    assert posted.status_code == 403
    assert not TargetAccountListVersion.objects.exists()


def test_anonymous_visitors_are_sent_to_log_in(client, db):
    for name in ("target_accounts:list", "target_accounts:edit"):
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_the_list_page_searches_pages_and_exports(client, db, ops):
    for index in range(55):
        AccountFactory(name=f"Account {index:02d}", domain=f"a{index:02d}.example")
    published("\n".join(f"a{index:02d}.example" for index in range(55)), actor=ops)
    login(client, VIEWER)
    first = client.get(reverse("target_accounts:list"))
    assert "Page 1 of 2" in first.text and "Account 49" in first.text
    assert "Account 50" not in first.text
    found = client.get(reverse("target_accounts:list"), {"q": "a07.exa"})
    assert "Account 07" in found.text and "Account 08" not in found.text
    export = client.get(reverse("target_accounts:list"), {"format": "csv", "q": "Account 1"})
    rows = b"".join(export.streaming_content).decode("utf-8-sig").splitlines()
    assert rows[0] == "account,domain,industry,country,tier,note"
    assert len(rows) == 11  # Account 10 … 19
    nothing = client.get(reverse("target_accounts:list"), {"q": "zzz"})
    assert "No target account matches" in nothing.text


def test_the_empty_state_invites_admins_to_add_accounts(client, db):
    login(client, REVOPS_ADMIN)
    response = client.get(reverse("target_accounts:list"))
    assert "No target-account list is published yet" in response.text
    assert "Add the accounts both teams agreed on" in response.text


def test_viewing_the_editor_writes_nothing_and_the_first_change_makes_the_draft(client, accounts):
    login(client, REVOPS_ADMIN)
    assert client.get(reverse("target_accounts:edit")).status_code == 200
    assert not TargetAccountListVersion.objects.exists()
    response = client.post(
        reverse("target_accounts:edit"), {"action": "import", "lines": "acme.com, 1\nGlobex"}
    )
    assert response.status_code == 302
    draft = selectors.list_draft()
    assert sorted(draft.accounts.values_list("account__name", flat=True)) == ["Acme", "Globex"]


def test_a_refused_import_on_the_page_says_why_and_keeps_no_draft(client, accounts):
    login(client, REVOPS_ADMIN)
    response = client.post(
        reverse("target_accounts:edit"), {"action": "import", "lines": "acme.com\nnope.example"}
    )
    assert response.status_code == 400
    assert "Nothing changed." in response.text
    assert "Line 2: no account has the domain &#x27;nope.example&#x27;." in response.text
    assert not TargetAccountListVersion.objects.exists()


def test_an_admin_removes_accounts_and_publishes_from_the_page(client, accounts, ops):
    published("acme.com\nglobex.com", actor=ops)
    login(client, REVOPS_ADMIN)
    edit = reverse("target_accounts:edit")
    client.post(edit, {"action": "remove", "account": [accounts["acme"].pk]})
    response = client.post(edit, {"action": "publish", "note": "Acme churned"})
    assert response.status_code == 302
    in_force = selectors.list_in_force()
    assert in_force.note == "Acme churned"
    assert list(in_force.accounts.values_list("account__name", flat=True)) == ["Globex"]


# --- The lead page's badge and the lead list's filter ------------------------------------------


def test_the_lead_page_marks_a_lead_of_a_target_account(client, accounts, ops):
    published("acme.com, 1", actor=ops)
    on_list = LeadFactory(account=accounts["acme"])
    off_list = LeadFactory(account=accounts["globex"])
    login(client, SALES_REP)
    badge = "data-target-account"
    page = client.get(reverse("leads:detail", args=[on_list.pk])).text
    assert badge in page and "Target account · tier 1" in page
    assert badge not in client.get(reverse("leads:detail", args=[off_list.pk])).text


def test_the_lead_list_filters_on_target_accounts(client, accounts, ops):
    published("acme.com", actor=ops)
    on_list = LeadFactory(account=accounts["acme"], last_name="Onlist")
    LeadFactory(account=accounts["globex"], last_name="Offlist")
    LeadFactory(account=None, last_name="Noaccount")
    login(client, SALES_REP)
    yes = client.get(reverse("leads:list"), {"target": "yes"}).text
    no = client.get(reverse("leads:list"), {"target": "no"}).text
    assert "Onlist" in yes and "Offlist" not in yes and "Noaccount" not in yes
    assert "Onlist" not in no and "Offlist" in no and "Noaccount" in no
    assert on_list.pk


def test_a_list_published_later_does_not_mark_leads_yet(client, accounts, ops):
    published("acme.com", actor=ops, at=timezone.now() + timedelta(days=1))
    lead = LeadFactory(account=accounts["acme"])
    login(client, SALES_REP)
    assert "data-target-account" not in client.get(reverse("leads:detail", args=[lead.pk])).text


# --- Demo data ---------------------------------------------------------------------------------


def test_the_demo_list_is_the_accounts_with_the_most_recent_pipeline(db):
    from leads.target_accounts.demo import DEMO_SIZE, demo_target_accounts
    from tests.metrics.factories import OpportunityFactory

    as_of = datetime(2026, 5, 20, tzinfo=UTC)  # Q2: pipeline since 1 January counts
    for index in range(DEMO_SIZE + 5):
        account = AccountFactory(name=f"Demo {index:02d}", domain=f"demo{index:02d}.example")
        OpportunityFactory(
            account=account, amount=100 * (index + 1), created_at=as_of.replace(month=2)
        )
    old = AccountFactory(name="Old deal", domain="old.example")
    OpportunityFactory(account=old, amount=10**6, created_at=datetime(2025, 11, 1, tzinfo=UTC))

    assert "25 accounts" in demo_target_accounts(as_of=as_of)
    version = selectors.list_in_force(at=as_of)
    rows = {row.account.name: row.tier for row in version.accounts.select_related("account")}
    assert len(rows) == DEMO_SIZE and "Old deal" not in rows and "Demo 04" not in rows
    assert (rows["Demo 29"], rows["Demo 20"], rows["Demo 10"]) == ("1", "2", "3")
    assert version.effective_from < datetime(2026, 1, 2, tzinfo=UTC)  # the quarter before
    assert demo_target_accounts(as_of=as_of) == ""  # a list in force is left alone


def test_the_list_pages_read_a_fixed_number_of_queries(client, db, ops, django_assert_num_queries):
    def add(count: int, start: int) -> None:
        for index in range(start, start + count):
            AccountFactory(name=f"Account {index:03d}", domain=f"q{index:03d}.example")

    add(3, 0)
    published("\n".join(f"q{index:03d}.example" for index in range(3)), actor=ops)
    client.force_login(ops)
    # However many accounts: session, user, the list in force and who published it, the
    # draft, the page's count and rows, the permission lookups, the top bar's notice count.
    with django_assert_num_queries(LIST_PAGE_QUERIES):
        client.get(reverse("target_accounts:list"))
    with django_assert_num_queries(EDIT_PAGE_QUERIES):
        client.get(reverse("target_accounts:edit"))
    add(60, 3)
    services.target_accounts_import(
        draft=services.target_list_draft(actor=ops),
        text="\n".join(f"q{index:03d}.example" for index in range(3, 63)),
    )
    services.target_list_publish(draft=selectors.list_draft(), actor=ops)
    with django_assert_num_queries(LIST_PAGE_QUERIES):
        assert "Account 049" in client.get(reverse("target_accounts:list")).text
    with django_assert_num_queries(EDIT_PAGE_QUERIES):
        client.get(reverse("target_accounts:edit"))


LIST_PAGE_QUERIES = 10
EDIT_PAGE_QUERIES = 9


def test_the_handoff_page_marks_a_lead_of_a_target_account(client, accounts, ops):
    from tests.metrics.factories import HandoffFactory

    published("acme.com, 2, Ana runs the play", actor=ops)
    handoff = HandoffFactory(lead=LeadFactory(account=accounts["acme"]))
    client.force_login(ops)
    page = client.get(reverse("leads:handoff", args=[handoff.pk])).text
    assert "Target account · tier 2" in page and "Ana runs the play" in page


def test_the_account_admin_marks_accounts_on_the_list(admin_client, accounts, ops):
    published("acme.com", actor=ops)
    page = admin_client.get(reverse("admin:leads_account_changelist")).text
    acme = page[page.index(">Acme<") :].split("</tr>")[0]
    globex = page[page.index(">Globex<") :].split("</tr>")[0]
    assert 'alt="True"' in acme and 'alt="False"' in globex
