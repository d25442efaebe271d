"""Pages of the leads app: lead list and page (``leads``), the handoff workflow (``handoffs``)."""
