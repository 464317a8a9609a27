from django.urls import include, path, re_path

from sandbox.api import unknown_route
from sandbox.views import control, files, jobs, models, together

app_name = "sandbox"

api = [
    path("files", files.files),
    path("files/<str:file_id>", files.file_detail),
    path("files/<str:file_id>/content", files.file_content),
    path("uploads", files.uploads),
    path("uploads/<str:upload_id>/parts", files.upload_parts),
    path("uploads/<str:upload_id>/complete", files.upload_complete),
    path("uploads/<str:upload_id>/cancel", files.upload_cancel),
    path("fine_tuning/jobs", jobs.jobs),
    path("fine_tuning/jobs/<str:job_id>", jobs.job_detail),
    path("fine_tuning/jobs/<str:job_id>/cancel", jobs.job_cancel),
    path("fine_tuning/jobs/<str:job_id>/pause", jobs.job_pause),
    path("fine_tuning/jobs/<str:job_id>/resume", jobs.job_resume),
    path("fine_tuning/jobs/<str:job_id>/events", jobs.job_events),
    path("fine_tuning/jobs/<str:job_id>/checkpoints", jobs.job_checkpoints),
    path("models", models.models),
    path("models/<str:model_id>", models.model_detail),
    path("chat/completions", models.chat_completions),
    re_path(r"^(?P<rest>.*)$", unknown_route),
]

# Together AI's fine-tuning and files API, over the same engine.
together_api = [
    path("files", together.files),
    path("files/upload", together.files_upload),
    path("files/<str:file_id>", together.file_detail),
    path("files/<str:file_id>/content", together.file_content),
    path("files/<str:file_id>/preprocess", together.file_preprocess),
    path("fine-tunes", together.fine_tunes),
    path("fine-tunes/estimate-price", together.estimate_price),
    path("fine-tunes/models/supported", together.models_supported),
    path("fine-tunes/models/limits", together.models_limits),
    path("fine-tunes/<str:job_id>", together.fine_tune_detail),
    path("fine-tunes/<str:job_id>/cancel", together.fine_tune_cancel),
    path("fine-tunes/<str:job_id>/events", together.fine_tune_events),
    path("fine-tunes/<str:job_id>/checkpoints", together.fine_tune_checkpoints),
    path("fine-tunes/<str:job_id>/metrics", together.fine_tune_metrics),
    path("chat/completions", models.chat_completions),
    re_path(r"^(?P<rest>.*)$", unknown_route),
]

urlpatterns = [
    path("v1/", include(api)),
    path("together/v1/", include(together_api)),
    path("together/put/<str:token>", together.put_content, name="together_put"),
    # Azure OpenAI's v1 surface: same API under /openai/v1/, `api-key` header, `api-version`.
    path("openai/v1/", include(api)),
    path("control/faults", control.faults),
    path("control/account", control.account),
    path("control/completions", control.completions),
    re_path(r"^(?P<rest>.*)$", unknown_route),
]
