"""A chat-completions server on 127.0.0.1 for tests of the `openai` backend and what uses it.

    class Echo(ChatServer):
        def answer(self, handler, body):
            send_json(handler, 200, {"choices": choices(["hi"] * body["n"])})

Each POST body is parsed and handed to `answer`, which writes the reply
(or misbehaves on purpose: a dropped connection, an error status, a body
shorter than its Content-Length). `ChatServer(keep_alive=True)` speaks
HTTP/1.1 and keeps connections open (every reply must then say its length:
send_json does).
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ChatServer:
    def __init__(self, keep_alive: bool = False):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def log_message(self, *a):
                pass

            def do_POST(self):
                server.answer(self, json.loads(self.rfile.read(int(self.headers["Content-Length"]))))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def answer(self, handler: BaseHTTPRequestHandler, body: dict) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def send_json(handler: BaseHTTPRequestHandler, status: int, obj: dict, cut: bool = False,
              headers: dict | None = None) -> None:
    """`obj` as the reply, with `headers` besides its type and length; `cut` sends half the body it announces,
    then closes the connection."""
    data = json.dumps(obj).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data[: len(data) // 2] if cut else data)
    if cut:
        handler.close_connection = True


def choices(texts: list[str]) -> list[dict]:
    return [{"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
            for i, t in enumerate(texts)]
