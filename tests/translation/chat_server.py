"""A deterministic OpenAI-compatible chat-completions server for the translation tests: a real separate process on
loopback (stdlib only, so it starts in a fraction of a second). It does not translate; what it answers is explicit:

- every segment of the JSON payload comes back as ``译文：<segment>`` when the system prompt asks for Chinese, and as
  ``EN: <segment>`` when it asks for English, in the JSON shape the prompt asks for;
- model ``miscount``: a batch of several segments comes back one short (a model that loses count);
- model ``slow``: answers after ``--slow-s`` seconds (a back-end that hangs);
- model ``broken``: HTTP 500.

Each request's payload is appended to ``--log`` as a JSON line. The port it listens on is printed on stdout.
Translation quality is not measured here: this is the protocol, batching and timing under test, not a model.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PREFIXES = {"Chinese": "译文：", "English": "EN: "}


def answer(body: dict) -> tuple[int, dict]:
    system, user = body["messages"][0]["content"], body["messages"][-1]["content"]
    payload = json.loads(user)
    prefix = next(p for name, p in PREFIXES.items() if f"into {name}" in system or f"into Simplified {name}" in system)
    translations = [prefix + text for text in payload["segments"]]
    if body["model"] == "miscount" and len(translations) > 1:
        translations = translations[:-1]
    if body["model"] == "broken":
        return 500, {"error": {"message": "the model crashed", "type": "server_error"}}
    content = json.dumps({"translations": translations}, ensure_ascii=False)
    return 200, {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--slow-s", type=float, default=60)
    args = parser.parse_args()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with args.log.open("a", encoding="utf-8") as log:
                log.write(json.dumps({"model": body["model"], **json.loads(body["messages"][-1]["content"])}) + "\n")
            if body["model"] == "slow":
                time.sleep(args.slow_s)
            status, reply = answer(body) if self.path == "/v1/chat/completions" else (404, {"error": {}})
            data = json.dumps(reply, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
