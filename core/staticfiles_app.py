"""django.contrib.staticfiles, collecting only what pages load."""

from django.contrib.staticfiles.apps import StaticFilesConfig as BaseStaticFilesConfig


class StaticFilesConfig(BaseStaticFilesConfig):
    """collectstatic without what no page loads: django-ninja's ReDoc bundle (the API docs
    page is swagger-ui) and swagger-ui's 2 MB source map (nothing refers to it). Each would be
    hashed and compressed at every deploy."""

    ignore_patterns = [
        *BaseStaticFilesConfig.ignore_patterns,
        "redoc.standalone.js",
        "redoc.standalone.js.map",
        "swagger-ui-bundle.js.map",
    ]
