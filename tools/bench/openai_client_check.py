#!/usr/bin/env python3
"""Checks `cpt4j serve` with the official OpenAI Python client, unchanged: lists the models, runs a completion, a
streamed completion, and (when the model has a chat template) a chat completion; checks the error types.

Not part of CI (Python is no CI dependency). Run against a running server:
  ./cpt4j serve --model models/cpt4j-poetry-base --api-key secret &
  /work/venv-ref/bin/python tools/bench/openai_client_check.py --base-url http://127.0.0.1:8000/v1 --api-key secret
"""
import argparse
import sys

import openai

p = argparse.ArgumentParser()
p.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
p.add_argument("--api-key", default="none")
p.add_argument("--prompt", default="床前明月光，")
a = p.parse_args()

client = openai.OpenAI(base_url=a.base_url, api_key=a.api_key, max_retries=0)
models = [m.id for m in client.models.list().data]
print("models:", models)
model = models[0]

c = client.completions.create(model=model, prompt=a.prompt, max_tokens=24, temperature=0)
print("completion:", repr(c.choices[0].text), c.choices[0].finish_reason, c.usage)
assert c.usage.completion_tokens >= 1

pieces = []
for chunk in client.completions.create(model=model, prompt=a.prompt, max_tokens=24, temperature=0, stream=True,
                                       stream_options={"include_usage": True}):
    if chunk.choices:
        pieces.append(chunk.choices[0].text)
streamed = "".join(pieces)
print("streamed:  ", repr(streamed))
assert streamed == c.choices[0].text, "streamed text differs from the non-streamed one"

for m in models[1:]:
    r = client.completions.create(model=m, prompt=a.prompt, max_tokens=24, temperature=0)
    print(f"adapter {m}:", repr(r.choices[0].text))

try:
    client.chat.completions.create(model=model, messages=[{"role": "user", "content": "你好"}], max_tokens=16)
    print("chat: ok")
except openai.BadRequestError as e:
    print("chat: 400 as expected without a chat template:", e.body.get("message") if isinstance(e.body, dict) else e)

try:
    client.completions.create(model="no-such-model", prompt="x", max_tokens=1)
    sys.exit("an unknown model was accepted")
except openai.NotFoundError:
    print("unknown model: NotFoundError")
try:
    client.completions.create(model=model, prompt="x", max_tokens=10**6)
    sys.exit("max_tokens 10^6 was accepted")
except openai.BadRequestError:
    print("huge max_tokens: BadRequestError")
try:
    openai.OpenAI(base_url=a.base_url, api_key="wrong-key", max_retries=0).models.list()
    print("no API key required by this server")
except openai.AuthenticationError:
    print("wrong key: AuthenticationError")
print("OK")
