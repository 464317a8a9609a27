"""Runs trained on a team's own machines (transformers' ``Trainer`` and what builds on it).

There is no provider API to call: the training script reports its run through Tuneboard's REST
API (``dashboard.api``, the ``tuneboard-client`` package). The adapter only declares that, so
pages and services treat these runs like any other without knowing the kind's name."""

from __future__ import annotations

from typing import Any

from jobs.providers.parameters import Parameter, Traits


class SelfHostedRuns:
    traits = Traits(
        family="self_hosted",
        label="Self-hosted",
        # Free key/values: whatever the training script's arguments were.
        parameters=(),
        refreshes_catalog=False,
        quotes_price=False,
        suffix_max=0,
        wandb_integration=False,
        exact_token_counts=False,
        continues_fine_tuned=False,
        hosted=False,
        pauses=False,
    )

    @staticmethod
    def parameters_for(
        limits: dict[str, Any], *, method: str, training_type: str
    ) -> tuple[Parameter, ...]:
        return ()
