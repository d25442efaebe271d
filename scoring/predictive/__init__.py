"""The predictive score: a conversion probability learnt from this organisation's own outcomes,
shown beside the rule score (fit + engagement), never replacing it.

Outcome (``scoring.outcomes.closed_outcome``, the rule the backtest uses too). Converted (1):
the lead has a won opportunity or ever entered a won stage (Customer). Not converted (0): none
of that, and it has a lost opportunity, sits in a lost or disqualified stage, or was rejected by
sales at a handoff — unless something is still in play (an open opportunity or a pending
handoff). Every other lead is still open: it gets
a prediction but is not trained on.

Cutoff (``selectors.cutoff_expression``): a lead's features are what was known when sales started
working it — the earliest of its first handoff, its first opportunity and its first move into a
sales-owned or closed stage — or now, for a lead sales has not had yet. Engagement counts and
recency only include events strictly before the cutoff, so nothing sales did (calls, meetings,
the demo sales booked, the stage sales chose) can leak into what the model learns from. Lead,
source and account attributes are their current values: accounts are not versioned, so a
firmographic edited after the handoff is the one accepted leak (these fields rarely change).

Modules: ``learning`` (pure: pipeline, training, holdout figures, explanations), ``features``
(pure: the lead feature spec, the outcome rule), ``selectors`` (SQL reads), ``services``
(train or refuse, store a version, write predictions in bulk), ``tasks`` (beat and "retrain
now"), ``views``/``urls`` (the model page), ``models`` (tables of the scoring app).
"""
