"""Enumerations shared by the definitions and the facts (the vocabulary both teams agree on)."""

from django.db import models


class DefinitionStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"


class Team(models.TextChoices):
    MARKETING = "marketing", "Marketing"
    SALES = "sales", "Sales"


class StageKind(models.TextChoices):
    OPEN = "open", "Open"
    WON = "won", "Won"
    LOST = "lost", "Lost"
    NURTURE = "nurture", "Nurture"
    DISQUALIFIED = "disqualified", "Disqualified"


class TriggerType(models.TextChoices):
    SCORE_THRESHOLD = "score", "Score threshold"
    EVENT = "event", "Engagement event"
    MANUAL = "manual", "Manual"


class EventKind(models.TextChoices):
    """Engagement event kinds. Scoring weights and stage triggers may only name these."""

    PAGE_VIEW = "page_view", "Page view"
    PRICING_PAGE = "pricing_page", "Pricing page view"
    EMAIL_OPEN = "email_open", "E-mail open"
    EMAIL_CLICK = "email_click", "E-mail click"
    CONTENT_DOWNLOAD = "content_download", "Content download"
    WEBINAR_REGISTERED = "webinar_registered", "Webinar registration"
    WEBINAR_ATTENDED = "webinar_attended", "Webinar attended"
    EVENT_ATTENDED = "event_attended", "Event attended"
    FORM_FILL = "form_fill", "Form fill"
    TRIAL_SIGNUP = "trial_signup", "Trial sign-up"
    DEMO_REQUEST = "demo_request", "Demo request"
    MEETING_BOOKED = "meeting_booked", "Meeting booked"
    UNSUBSCRIBE = "unsubscribe", "Unsubscribe"
    EMAIL_BOUNCE = "email_bounce", "E-mail bounce"


class ChannelGroup(models.TextChoices):
    PAID_SEARCH = "paid_search", "Paid search"
    PAID_SOCIAL = "paid_social", "Paid social"
    ORGANIC_SEARCH = "organic_search", "Organic search"
    ORGANIC_SOCIAL = "organic_social", "Organic social"
    EMAIL = "email", "E-mail"
    EVENTS = "events", "Events & webinars"
    CONTENT = "content", "Content syndication"
    REFERRAL = "referral", "Referral"
    PARTNER = "partner", "Partner"
    DIRECT = "direct", "Direct"
    OUTBOUND = "outbound", "Outbound"
    OTHER = "other", "Other"


class SourceOrigin(models.TextChoices):
    MARKETING = "marketing", "Marketing-sourced"
    SALES = "sales", "Sales-sourced"


class Seniority(models.TextChoices):
    EXECUTIVE = "executive", "C-level / owner"
    VP = "vp", "VP"
    DIRECTOR = "director", "Director"
    MANAGER = "manager", "Manager"
    INDIVIDUAL = "individual", "Individual contributor"
    STUDENT = "student", "Student"
    UNKNOWN = "unknown", "Unknown"


class FitTier(models.TextChoices):
    A = "A", "Tier A"
    B = "B", "Tier B"
    C = "C", "Tier C"
    D = "D", "Tier D"


class CriterionAttribute(models.TextChoices):
    """What an ICP criterion looks at; the kind of match follows from the attribute."""

    INDUSTRY = "industry", "Account industry"
    EMPLOYEES = "employees", "Account employee count"
    ANNUAL_REVENUE = "annual_revenue", "Account annual revenue"
    COUNTRY = "country", "Account country"
    REGION = "region", "Account region"
    TECHNOLOGIES = "technologies", "Technologies used"
    SIGNALS = "signals", "Behavioural signals"
    SENIORITY = "seniority", "Lead seniority"
    TITLE = "title", "Lead job title contains"


RANGE_ATTRIBUTES = frozenset({CriterionAttribute.EMPLOYEES, CriterionAttribute.ANNUAL_REVENUE})


class AccountSignal(models.TextChoices):
    FUNDING_ROUND = "funding_round", "Recent funding round"
    EXECUTIVE_HIRE = "executive_hire", "New executive hire"
    HIRING_SURGE = "hiring_surge", "Hiring surge"
    EXPANSION = "expansion", "Expansion / new office"
    ACQUISITION = "acquisition", "Merger or acquisition"


class Region(models.TextChoices):
    NORTH_AMERICA = "NA", "North America"
    EMEA = "EMEA", "Europe, Middle East & Africa"
    APAC = "APAC", "Asia-Pacific"
    LATAM = "LATAM", "Latin America"


class HandoffOutcome(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"


class OpportunityStatus(models.TextChoices):
    OPEN = "open", "Open"
    WON = "won", "Won"
    LOST = "lost", "Lost"


class OpportunityStage(models.TextChoices):
    DISCOVERY = "discovery", "Discovery"
    DEMO = "demo", "Demo"
    PROPOSAL = "proposal", "Proposal"
    NEGOTIATION = "negotiation", "Negotiation"
    CLOSED_WON = "closed_won", "Closed won"
    CLOSED_LOST = "closed_lost", "Closed lost"


class ActorType(models.TextChoices):
    USER = "user", "User"
    SCORING = "scoring", "Scoring"
    IMPORT = "import", "Import"
    SYSTEM = "system", "System"


class AssetType(models.TextChoices):
    BLOG_POST = "blog_post", "Blog post"
    EBOOK = "ebook", "E-book / guide"
    WHITEPAPER = "whitepaper", "Whitepaper"
    WEBINAR = "webinar", "Webinar recording"
    CASE_STUDY = "case_study", "Case study"
    COMPARISON = "comparison", "Comparison"
    ROI_CALCULATOR = "roi_calculator", "ROI calculator"
    IMPLEMENTATION_GUIDE = "implementation_guide", "Implementation guide"
    PROPOSAL_TEMPLATE = "proposal_template", "Proposal template"


class FunnelStage(models.TextChoices):
    TOFU = "tofu", "Top of funnel"
    MOFU = "mofu", "Middle of funnel"
    BOFU = "bofu", "Bottom of funnel"


class TouchChannel(models.TextChoices):
    CALL = "call", "Call"
    EMAIL = "email", "E-mail"
    MEETING = "meeting", "Meeting"
    SOCIAL = "social", "Social message"
    OTHER = "other", "Other"


class ActivityAction(models.TextChoices):
    """What happened to a handed-off lead: the handoff's history, one row per action."""

    OPENED = "opened", "Handed to sales"
    RESPONDED = "responded", "First response"
    TOUCHED = "touched", "Follow-up logged"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"
    REASSIGNED = "reassigned", "Reassigned"
    RESPONSE_BREACHED = "response_breached", "Response SLA breached"
    ACCEPT_BREACHED = "accept_breached", "Accept SLA breached"
    RECYCLED = "recycled", "Recycled to nurture"


class NotificationKind(models.TextChoices):
    RESPONSE_BREACH = "response_breach", "Response SLA breached"
    ACCEPT_BREACH = "accept_breach", "Accept SLA breached"
    REASSIGNED = "reassigned", "Handoff reassigned to you"
