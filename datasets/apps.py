from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "datasets"

    def ready(self) -> None:
        from core import healthchecks, leases
        from datasets import selectors
        from datasets.models import Dataset

        healthchecks.register("tokenizer", selectors.tokenizer_health)

        # Uploaded (waiting for its validation) or being validated.
        leases.register(
            leases.WorkKind(
                name="validation",
                label="Dataset validation",
                active=lambda: Dataset.objects.filter(
                    status__in=(Dataset.Status.UPLOADED, Dataset.Status.VALIDATING)
                ),
                task="datasets.tasks.dataset_validate",
                task_args=lambda dataset: (dataset.pk, dataset.requested_model_id),
                describe=lambda dataset: f"dataset “{dataset.name}” (#{dataset.pk})",
            )
        )
