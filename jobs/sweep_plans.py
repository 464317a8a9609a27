"""A sweep's plan, before anything is written: every run it would launch, each checked by the
launch rules, with its billed tokens and estimated cost (the dataset's token counts × epochs ×
the model's training price), the total, and whether the budget allows it. The plan page shows
it; ``jobs.sweeps.sweep_create`` makes the same plan again and refuses what it refuses."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from datasets.models import BaseModel, Dataset
from jobs import guardrails, selectors
from jobs.models import ProviderConnection
from jobs.providers import traits
from jobs.services import JobError, LaunchRequest, launch_parameters, launch_problems
from jobs.sweep_space import MAX_RUNS, PlannedRun, SpaceError, Values, expand, varied

MAX_CONCURRENCY = MAX_RUNS


@dataclass(frozen=True)
class SweepRequest:
    """What a sweep tries. ``space`` maps "base_model", "seed" and the connection's declared
    parameters to their values (``jobs.sweep_space``)."""

    name: str
    connection: ProviderConnection
    training_dataset: Dataset
    validation_dataset: Dataset | None
    space: dict[str, Values]
    budget_usd: Decimal
    mode: str = "grid"
    method: str = "supervised"
    samples: int | None = None
    sample_seed: int = 0
    concurrency: int | None = None  # None: the provider's limit on active jobs
    guardrails: tuple[dict[str, Any], ...] | None = None  # None: the connection's defaults


@dataclass
class PlanRow:
    index: int
    run: PlannedRun
    n_epochs: int | None
    epochs_auto: bool
    billed_tokens: int | None
    cost: Decimal | None
    problems: list[str] = field(default_factory=list)


@dataclass
class Plan:
    request: SweepRequest
    rows: list[PlanRow]
    concurrency: int
    varied: list[str]
    problems: list[JobError] = field(default_factory=list)  # refuse the whole sweep

    @property
    def total(self) -> Decimal | None:
        costs = [row.cost for row in self.rows]
        if not costs or any(cost is None for cost in costs):
            return None
        return sum((cost for cost in costs if cost is not None), Decimal(0))

    @property
    def varied_columns(self) -> list[str]:
        """The varied dimensions shown beside the base model and the epochs (which have a
        column anyway)."""
        return [key for key in self.varied if key not in ("base_model", "n_epochs")]

    @property
    def run_problems(self) -> int:
        return sum(1 for row in self.rows if row.problems)

    @property
    def startable(self) -> bool:
        return not self.problems and not self.run_problems


def launch_request(request: SweepRequest, run: PlannedRun, *, name: str = "") -> LaunchRequest:
    return LaunchRequest(
        connection=request.connection,
        base_model=run.base_model,
        training_dataset=request.training_dataset,
        validation_dataset=request.validation_dataset,
        method=request.method,
        hyperparameters=run.hyperparameters,
        seed=run.seed,
        name=name,
        guardrails=request.guardrails,
    )


def _epochs(run: PlannedRun, request: SweepRequest, model: BaseModel | None) -> int | None:
    """The epochs a run trains for: chosen, else the provider's declared default (None:
    "auto", which the estimate chooses the way the provider does)."""
    chosen = run.hyperparameters.get("n_epochs")
    if isinstance(chosen, int):
        return chosen
    declared = launch_parameters(
        kind=request.connection.kind,
        model=model,
        method=request.method,
        hyperparameters=run.hyperparameters,
    )
    default = next((p.default for p in declared if p.name == "n_epochs"), None)
    return default if isinstance(default, int) else None


def _row(
    index: int, run: PlannedRun, request: SweepRequest, models: dict[str, BaseModel]
) -> PlanRow:
    model = selectors.catalog_model_for(run.base_model, models)
    epochs = _epochs(run, request, model)
    contexts = {model.training_context} if model is not None else set()
    facts = selectors.training_facts(request.training_dataset.pk, contexts)
    estimate = selectors.launch_estimate(facts, model, epochs)
    problems = [
        str(p)
        for p in launch_problems(request=launch_request(request, run), catalog=models)
        if p.field not in ("connection", "training_dataset", "validation_dataset")
    ]
    if estimate is not None and estimate.cost is None:
        ask = (
            "ask for a price quote on the launch page once, or an admin sets it"
            if traits(request.connection.kind).quotes_price
            else "an admin sets it"
        )
        problems.append(
            f"No training price is known for {run.base_model}: a budgeted sweep needs one "
            f"({ask} in the model catalog)."
        )
    elif estimate is None and not problems:
        problems.append(f"The cost of training {run.base_model} on this dataset is unknown.")
    return PlanRow(
        index=index,
        run=run,
        n_epochs=estimate.n_epochs if estimate else epochs,
        epochs_auto=estimate.epochs_auto if estimate else epochs is None,
        billed_tokens=estimate.billed_tokens if estimate else None,
        cost=estimate.cost if estimate else None,
        problems=problems,
    )


def _sweep_problems(request: SweepRequest, plan_rows: list[PlanRow]) -> list[JobError]:
    """What refuses the sweep as a whole (the connection, the datasets, the budget)."""
    problems: list[JobError] = []
    if not traits(request.connection.kind).hosted:
        problems.append(
            JobError(
                "Self-hosted runs report themselves: a sweep launches jobs at a provider.",
                field="connection",
            )
        )
    elif plan_rows:
        first = launch_request(request, plan_rows[0].run)
        problems += [
            p
            for p in launch_problems(request=first)
            if p.field in ("connection", "training_dataset", "validation_dataset")
        ]
    guarding = guardrails.rules_problem(request.connection, request.guardrails or ())
    if guarding:
        problems.append(JobError(guarding, field="guardrails"))
    if request.budget_usd <= 0:
        problems.append(JobError("The budget must be more than $0.", field="budget_usd"))
    return problems


def sweep_plan(*, request: SweepRequest, catalog: dict[str, BaseModel] | None = None) -> Plan:
    """Every run the sweep would launch, with its estimated cost and problems, and whatever
    refuses the sweep (a read: nothing is written)."""
    models = catalog if catalog is not None else selectors.catalog()
    concurrency = request.concurrency or traits(request.connection.kind).active_jobs
    try:
        runs = expand(
            request.space,
            mode=request.mode,
            samples=request.samples,
            sample_seed=request.sample_seed,
        )
    except SpaceError as exc:
        return Plan(request, [], concurrency, [], [JobError(str(exc), field=exc.field or None)])
    rows = [_row(i, run, request, models) for i, run in enumerate(runs, start=1)]
    plan = Plan(request, rows, concurrency, varied(runs), _sweep_problems(request, rows))
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        plan.problems.append(
            JobError(f"Concurrency is 1 to {MAX_CONCURRENCY} runs.", field="concurrency")
        )
    total = plan.total
    if total is not None and total > request.budget_usd:
        plan.problems.append(
            JobError(
                f"The planned runs cost ${total:,.2f}, over the ${request.budget_usd:,.2f} "
                "budget: raise the budget or plan fewer or shorter runs.",
                field="budget_usd",
            )
        )
    return plan
