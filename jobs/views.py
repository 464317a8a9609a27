from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET


@require_GET
def job_list(request: HttpRequest) -> HttpResponse:
    # The runs list on the home page is the one list of jobs.
    return redirect("home")
