"""CSV imports of accounts, leads, engagement events and opportunities.

``mapping`` (pure: fields, the mapping JSON, parsing, guessing), ``history`` (pure: the stage
history an import implies), ``csvfile`` (encodings, delimiters, streaming rows), ``engine``
(the import itself), ``writer`` (COPY / bulk INSERT), ``presets``, ``services`` (upload ⇒ map ⇒
preview ⇒ commit), ``tasks`` (Celery), ``forms`` and ``views`` (the pages).
"""
