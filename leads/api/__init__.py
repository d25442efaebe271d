"""The REST API (``/api/v1/``, routed in ``revops.api_urls``): interfaces over the services and
selectors, with one error format (``revops.api_errors``)."""
