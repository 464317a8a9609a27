app_name = "sandbox"
# The OpenAI-compatible API is mounted under /sandbox/v1/ (see the Sandbox issue).
urlpatterns: list = []
