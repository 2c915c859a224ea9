"""``unsubscribe/<token>/``: the one-click link of every feed email (RFC 8058).

No login: the signed token names the user. GET shows a confirmation page (link
scanners and prefetchers must not unsubscribe anyone); POST, from the page or
from a mail client's one-click button, stops the emails. CSRF-exempt because a
mail client's POST carries no token; the signature is the protection.
"""

from __future__ import annotations

from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.template.response import TemplateResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from ..services.email import read_unsubscribe_token
from ..services.preferences import unsubscribe

TEMPLATE = "django_engagement/email/unsubscribe.html"


@method_decorator(csrf_exempt, name="dispatch")
class UnsubscribeView(View):
    http_method_names = ["get", "post"]

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        try:
            _user_id, activity_type = read_unsubscribe_token(token)
        except signing.BadSignature:
            return HttpResponseBadRequest("This unsubscribe link is invalid.")
        return TemplateResponse(request, TEMPLATE, {"activity_type": activity_type, "done": False})

    def post(self, request: HttpRequest, token: str) -> HttpResponse:
        try:
            user_id, activity_type = read_unsubscribe_token(token)
        except signing.BadSignature:
            return HttpResponseBadRequest("This unsubscribe link is invalid.")
        unsubscribe(user_id, activity_type)
        return TemplateResponse(request, TEMPLATE, {"activity_type": activity_type, "done": True})
