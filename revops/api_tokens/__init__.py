"""Per-user API tokens, stored only as a hash (django-rest-knox): created and shown once by their
owner, listed as metadata, revoked by the owner or a RevOps admin. ADR 9."""
