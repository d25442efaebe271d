"""Writes of the target-account list: the draft, its accounts (imported by domain or name,
removed), and publishing it.

The list is a versioned definition: drafts and publishing are ``leads.services.definitions``'
(numbering, copy of the version in force, who published when, one audit entry); the rows are
saved one by one so the audit trail says who added or removed which account. Every write
checks everything first and refuses with ``ValidationError``, changing nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.functions import Lower

from leads.models import Account, TargetAccount, TargetAccountListVersion
from leads.services.definitions import definition_create_draft, definition_publish
from leads.target_accounts.imports import ImportLine, parse_lines
from leads.target_accounts.selectors import list_draft, list_in_force


def _actor(user: AbstractBaseUser | None):
    return user if user is not None and user.is_authenticated else None


def _locked_draft(draft: TargetAccountListVersion) -> TargetAccountListVersion:
    draft = TargetAccountListVersion.objects.select_for_update().get(pk=draft.pk)
    draft.ensure_editable()
    return draft


def target_list_draft(*, actor: AbstractBaseUser | None) -> TargetAccountListVersion:
    """The draft admins edit: the newest one, else a new one copying the list in force."""
    with transaction.atomic():
        draft = list_draft()
        if draft is not None:
            return draft
        source = list_in_force()
        note = f"Copy of v{source.number}" if source is not None else ""
        return definition_create_draft(
            model=TargetAccountListVersion, actor=_actor(actor), copy_from=source, note=note
        )


@dataclass(frozen=True)
class ImportResult:
    added: int
    updated: int


def _resolve(lines: list[ImportLine]) -> tuple[dict[int, Account], list[str]]:
    """Each line's account (by line number) and the lines naming none or several: two
    queries, one for the domains and one for the names."""
    domains = {line.key for line in lines if line.is_domain}
    names = {line.key.lower() for line in lines if not line.is_domain}
    by_domain = {a.domain: a for a in Account.objects.filter(domain__in=domains)} if domains else {}
    by_name: dict[str, list[Account]] = {}
    if names:
        found = Account.objects.annotate(lower_name=Lower("name")).filter(lower_name__in=names)
        for account in found.order_by("pk"):
            by_name.setdefault(account.lower_name, []).append(account)
    resolved: dict[int, Account] = {}
    problems: list[str] = []
    for line in lines:
        if line.is_domain:
            account = by_domain.get(line.key)
            if account is None:
                problems.append(f"Line {line.number}: no account has {line.shown}.")
                continue
        else:
            matches = by_name.get(line.key.lower(), [])
            if not matches:
                problems.append(f"Line {line.number}: no account has {line.shown}.")
                continue
            if len(matches) > 1:
                problems.append(
                    f"Line {line.number}: {len(matches)} accounts have {line.shown}: "
                    "write its domain instead."
                )
                continue
            account = matches[0]
        resolved[line.number] = account
    seen: dict[int, int] = {}
    for line in lines:
        account = resolved.get(line.number)
        if account is None:
            continue
        if account.pk in seen:
            problems.append(
                f"Line {line.number}: {account.name} is already on line {seen[account.pk]}."
            )
        else:
            seen[account.pk] = line.number
    return resolved, problems


def target_accounts_import(
    *, draft: TargetAccountListVersion, text: str, actor: AbstractBaseUser | None = None
) -> ImportResult:
    """Put the accounts a pasted text names (``leads.target_accounts.imports``) on the draft:
    new ones are added, ones already on it take the tier and note given. Refused as a whole,
    with every problem by line (unknown, ambiguous or repeated accounts, bad tiers), when any
    line is wrong: then nothing changes."""
    lines, problems = parse_lines(text)
    if problems:
        raise ValidationError(problems)
    with transaction.atomic():
        draft = _locked_draft(draft)
        resolved, problems = _resolve(lines)
        if problems:
            raise ValidationError(problems)
        existing = {row.account_id: row for row in draft.accounts.all()}
        added = updated = 0
        for line in lines:
            account = resolved[line.number]
            row = existing.get(account.pk)
            if row is None:
                TargetAccount(version=draft, account=account, tier=line.tier, note=line.note).save()
                added += 1
            elif (row.tier, row.note) != (line.tier, line.note):
                row.tier, row.note = line.tier, line.note
                row.save(update_fields=["tier", "note"])
                updated += 1
    return ImportResult(added=added, updated=updated)


def target_accounts_remove(*, draft: TargetAccountListVersion, account_ids: Iterable[int]) -> int:
    """Take the given accounts off the draft; how many went. An account not on it: refused."""
    wanted = set(account_ids)
    with transaction.atomic():
        draft = _locked_draft(draft)
        rows = list(draft.accounts.filter(account_id__in=wanted))
        if len(rows) != len(wanted):
            raise ValidationError("Some of the accounts to remove are not on this draft.")
        for row in rows:  # one by one: each removal is in the audit trail
            row.delete()
    return len(rows)


def target_list_note(*, draft: TargetAccountListVersion, note: str) -> TargetAccountListVersion:
    with transaction.atomic():
        draft = _locked_draft(draft)
        if draft.note != note:
            draft.note = note
            draft.full_clean(exclude=["number"])
            draft.save(update_fields=["note"])
    return draft


def target_list_publish(
    *,
    draft: TargetAccountListVersion,
    actor: AbstractBaseUser | None,
    effective_from: datetime | None = None,
) -> TargetAccountListVersion:
    """Publish the draft: it is the list in force from ``effective_from`` (now) on."""
    return definition_publish(version=draft, actor=_actor(actor), effective_from=effective_from)
