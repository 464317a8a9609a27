from django.urls import path

from datasets import views

app_name = "datasets"
urlpatterns = [
    path("", views.dataset_list, name="list"),
    path("upload/", views.dataset_upload, name="upload"),
    path("<int:pk>/", views.dataset_detail, name="detail"),
    path("<int:pk>/status.json", views.dataset_status, name="status"),
    path("<int:pk>/examples/", views.dataset_examples, name="examples"),
    path("<int:pk>/download/", views.dataset_download, name="download"),
    path("<int:pk>/lines/<int:line>/", views.dataset_line, name="line"),
    path("<int:pk>/revalidate/", views.dataset_revalidate, name="revalidate"),
    path("<int:pk>/derive/", views.dataset_derive, name="derive"),
    path("<int:pk>/split/", views.dataset_split, name="split"),
    path("<int:pk>/subset/", views.dataset_subset, name="subset"),
]
