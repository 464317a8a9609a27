"""A real, tiny fine-tuning run on CPU, as a team's training script would be (run as its own
process by tests/selfhosted/test_training.py).

It downloads its chat datasets from Tuneboard through the API, trains a byte-level BPE
tokenizer on them, builds a two-layer causal language model from a config (nothing comes from
a model hub) and trains it with transformers' ``Trainer``, evaluating and saving a checkpoint
every 10 steps, with ``TuneboardCallback`` reporting to Tuneboard.

Environment: TUNEBOARD_URL, TUNEBOARD_TOKEN, TRAIN_DATASET, VALID_DATASET, OUT_DIR, RUN_ID;
PAUSE_AT_STEP (optional): after saving that step's checkpoint, write OUT_DIR/paused and wait
for OUT_DIR/resume (so a test can stop the server at a known point); with STOP also set, then
wait until Tuneboard has told the run to stop. OUT_DIR/trained is
written when training is over, before the client's final delivery.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import torch
import tuneboard
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import (
    DataCollatorForLanguageModeling,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)
from tuneboard import TuneboardCallback

URL = os.environ["TUNEBOARD_URL"]
TOKEN = os.environ["TUNEBOARD_TOKEN"]
OUT = Path(os.environ["OUT_DIR"])
MAX_STEPS = 50


def download(dataset_id: str) -> list[str]:
    response = httpx.get(
        f"{URL}/api/v1/datasets/{dataset_id}/file",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    response.raise_for_status()
    texts = []
    for line in response.text.splitlines():
        if line.strip():
            messages = json.loads(line)["messages"]
            texts.append("\n".join(f"{m['role']}: {m['content']}" for m in messages))
    return texts


def tokenizer_for(texts: list[str]) -> PreTrainedTokenizerFast:
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.train_from_iterator(
        texts, trainers.BpeTrainer(vocab_size=400, special_tokens=["<pad>", "<unk>", "<eos>"])
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe, pad_token="<pad>", unk_token="<unk>", eos_token="<eos>"
    )


class Encoded(torch.utils.data.Dataset):  # type: ignore[type-arg]
    def __init__(self, texts: list[str], tokenizer: PreTrainedTokenizerFast) -> None:
        self.items = [tokenizer(t, truncation=True, max_length=64) for t in texts]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Any:
        return self.items[index]


class PauseAt(TrainerCallback):
    """With ``wait_for_stop``, after resuming it reports an event (whose reply carries
    Tuneboard's directives) and waits until the run has heard "stop"."""

    def __init__(self, step: int, run: tuneboard.Run, *, wait_for_stop: bool) -> None:
        self.step = step
        self.run = run
        self.wait_for_stop = wait_for_stop

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step != self.step:
            return
        (OUT / "paused").touch()
        while not (OUT / "resume").exists():
            time.sleep(0.05)
        if self.wait_for_stop:
            self.run.event("resumed after the pause")
            deadline = time.monotonic() + 60
            while not self.run.should_stop and time.monotonic() < deadline:
                time.sleep(0.05)


class Trained(TrainerCallback):
    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        (OUT / "trained").touch()


def main() -> None:
    torch.manual_seed(0)
    train_texts = download(os.environ["TRAIN_DATASET"])
    valid_texts = download(os.environ["VALID_DATASET"])
    tokenizer = tokenizer_for(train_texts + valid_texts)
    model = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=len(tokenizer), n_positions=64, n_embd=32, n_layer=2, n_head=2,
            bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )  # fmt: skip
    model.config.name_or_path = "tiny-gpt2-from-config"
    args = TrainingArguments(
        output_dir=str(OUT),
        run_name="tiny chat run",
        max_steps=MAX_STEPS,
        per_device_train_batch_size=8,
        per_device_eval_batch_size=16,
        learning_rate=3e-3,
        warmup_steps=5,
        logging_steps=5,
        eval_strategy="steps",
        eval_steps=10,
        save_strategy="steps",
        save_steps=10,
        save_total_limit=2,
        report_to=[],
        use_cpu=True,
        seed=0,
        dataloader_num_workers=0,
        disable_tqdm=True,
        include_num_input_tokens_seen=True,
    )
    run = tuneboard.init(
        run=os.environ["RUN_ID"],
        name="tiny chat run",
        base_model="tiny-gpt2-from-config",
        training_dataset=int(os.environ["TRAIN_DATASET"]),
        validation_dataset=int(os.environ["VALID_DATASET"]),
        tags=["cpu", "tiny"],
        hyperparameters=args.to_sanitized_dict(),
        spool_dir=OUT / "spool",
    )
    callbacks: list[TrainerCallback] = [Trained(), TuneboardCallback(run)]
    if os.environ.get("PAUSE_AT_STEP"):
        callbacks.append(
            PauseAt(
                int(os.environ["PAUSE_AT_STEP"]), run, wait_for_stop=bool(os.environ.get("STOP"))
            )
        )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=Encoded(train_texts, tokenizer),
        eval_dataset=Encoded(valid_texts, tokenizer),
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
        callbacks=callbacks,
    )
    trainer.train()


if __name__ == "__main__":
    main()
