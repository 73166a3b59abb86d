"""`spar serve`: an OpenAI-compatible server whose answers come from tree-search decoding.

    spar serve --model smollm2-135m-instruct --judge hybrid            # http://127.0.0.1:8000/v1

    from openai import OpenAI
    client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="...")
    r = client.chat.completions.create(model="smollm2-135m-instruct", messages=[...],
                                       extra_body={"spar": {"strategy": "bfs", "budget": 8, "return_tree": True}})
    r.choices[0].message.content, r.usage, r.model_extra["spar"]

Decoding is chosen per request by the `spar` extension field (strategy:
greedy, best_of_n, bfs or dfs; budget: generated responses per choice;
return_tree; constraints for the verifier and hybrid judges), with the
server's default otherwise.

* protocol.py - the wire format: request checking (4xx naming the field), errors, responses, stream chunks
* scheduler.py - the model's one worker thread: concurrent requests batched into shared backend calls,
  their searches advanced together through the multi-tree engine
* app.py - FastAPI routes: auth, limits, streaming, disconnects
"""

from spar.serve.protocol import APIError, ChatRequest, Defaults, Limits, parse_chat_request

__all__ = ["APIError", "ChatRequest", "Defaults", "Limits", "parse_chat_request", "create_app", "Scheduler",
           "ServeSettings"]


def __getattr__(name):  # fastapi is an optional extra: imported only when the app is built
    if name in ("create_app", "ServeSettings"):
        from spar.serve import app

        return getattr(app, name)
    if name == "Scheduler":
        from spar.serve.scheduler import Scheduler

        return Scheduler
    raise AttributeError(name)
