"""Small training files the sandbox tests make themselves."""

from __future__ import annotations

import json
import random

TOPICS = [
    "bicycles", "tea", "volcanoes", "chess", "tides", "owls", "bread", "comets", "violins",
    "glaciers", "bees", "lighthouses", "origami", "sundials", "coral", "kites", "maps",
    "lanterns", "mosses", "geysers", "otters", "prisms", "quilts", "ravens", "saffron",
    "tulips", "umbrellas", "vinegar", "walnuts", "yaks", "zeppelins", "anchors", "basalt",
    "cactus", "dunes", "ember", "ferns", "granite", "harbors", "igloos",
]  # fmt: skip


def chat_examples(
    n: int, *, seed: int = 7, system: str = "You answer in one short sentence."
) -> list[dict]:
    rng = random.Random(seed)
    examples = []
    for index in range(n):
        topic = TOPICS[index % len(TOPICS)]
        question = f"Tell me one fact about {topic} (#{index})."
        answer = f"Fact {index}: {topic} are {rng.choice(['remarkable', 'ancient', 'useful', 'curious'])} and number {rng.randint(1, 999)}."
        examples.append(
            {
                "messages": [
                    {"role": "system", "content": system},
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": answer},
                ]
            }
        )
    return examples


def dpo_examples(n: int) -> list[dict]:
    return [
        {
            "input": {
                "messages": [
                    {"role": "user", "content": f"Describe {TOPICS[i % len(TOPICS)]} (#{i})."}
                ]
            },
            "preferred_output": [
                {"role": "assistant", "content": f"A concise, kind description #{i}."}
            ],
            "non_preferred_output": [
                {"role": "assistant", "content": f"A rambling, rude description #{i}."}
            ],
        }
        for i in range(n)
    ]


def jsonl(examples: list[dict]) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in examples)
