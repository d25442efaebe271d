"""``/api/v1/``: the REST API. Every endpoint needs authentication (a session or an API token;
anonymous calls get 401), except the docs page, which sends a browser to log in first."""

from django.contrib.auth.views import redirect_to_login
from django.urls import include, path, re_path
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.routers import DefaultRouter
from rest_framework.views import APIView

from leads.api import definitions, team, views
from metrics.api import KpiIndexView, KpiView
from revops.api_tokens.api import ApiTokenViewSet
from scoring.api import ScoringModelViewSet

app_name = "api"


class Router(DefaultRouter):
    """Routes with the trailing slash optional: ``POST /handoffs/7/accept`` works as well as
    ``…/accept/`` (a redirect would lose a POST's body)."""

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"


router = Router()
router.register("leads", views.LeadViewSet, basename="lead")
router.register("accounts", views.AccountViewSet, basename="account")
router.register("sources", views.SourceViewSet, basename="source")
router.register("campaigns", views.CampaignViewSet, basename="campaign")
router.register("events", views.EngagementEventViewSet, basename="event")
router.register("opportunities", views.OpportunityViewSet, basename="opportunity")
router.register("sales-reps", team.SalesRepViewSet, basename="sales-rep")
router.register("teams", team.TeamViewSet, basename="team")
router.register("handoffs", views.HandoffViewSet, basename="handoff")
router.register("definitions/icp", definitions.IcpVersionViewSet, basename="icp-version")
router.register(
    "definitions/lifecycle", definitions.LifecycleVersionViewSet, basename="lifecycle-version"
)
router.register("definitions/sla", definitions.SlaVersionViewSet, basename="sla-version")
router.register("definitions/scoring-models", ScoringModelViewSet, basename="scoring-model")
router.register("tokens", ApiTokenViewSet, basename="api-token")


class DocsView(SpectacularSwaggerSplitView):
    """Swagger UI (assets from drf-spectacular-sidecar: works offline). A browser without a
    session is sent to the login page and back. The "split" view serves its start-up script from
    ``?script`` rather than inline, as the Content-Security-Policy requires."""

    permission_classes = [AllowAny]

    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return super().get(request, *args, **kwargs)


class NotFoundView(APIView):
    """Any other path under /api/v1/: the API's 404 (after authentication), not Django's page."""

    schema = None

    def get(self, request, *args, **kwargs):
        raise NotFound(f"No API endpoint at {request.path}.")

    post = put = patch = delete = get


urlpatterns = [
    path("", include(router.urls)),
    re_path(r"^kpis/?$", KpiIndexView.as_view(), name="kpis"),
    re_path(r"^kpis/(?P<name>[^/]+)/?$", KpiView.as_view(), name="kpi"),
    re_path(r"^schema/?$", SpectacularAPIView.as_view(), name="schema"),
    re_path(r"^docs/?$", DocsView.as_view(url_name="api:schema"), name="docs"),
    re_path(r"^[\s\S]*$", NotFoundView.as_view()),  # any character: "." misses a newline
]
