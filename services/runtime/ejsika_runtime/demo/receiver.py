"""A stand-in for an agency's (OPD's) system: verifies each signed webhook and keeps what it got.

Run alone with `EJSIKA_DEMO_RECEIVER_SECRET=whsec_… python -m ejsika_runtime.demo.receiver PORT`
(the secret in the environment, not on a command line any local user can read); tests and the
demo launcher start it the same way.
"""

from __future__ import annotations

import json
import os
import sys
import time

from fastapi import FastAPI, Request, Response
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def receiver_app(secret: str) -> FastAPI:
    webhook = Webhook(secret)
    app = FastAPI(title="demo OPD receiver")
    app.state.received = []

    @app.post("/webhooks")
    async def receive(request: Request) -> Response:
        body = await request.body()
        try:
            payload = webhook.verify(body, dict(request.headers))
        except WebhookVerificationError:
            return Response("bad signature", status_code=401)
        app.state.received.append({"webhook_id": request.headers.get("webhook-id"), "at": time.time(),
                                   "payload": payload})
        notifications = payload.get("notifications", [payload]) if isinstance(payload, dict) else payload
        print(json.dumps({"webhook": request.headers.get("webhook-id"), "notifications": len(notifications)}),
              flush=True)
        return Response(status_code=204)

    @app.get("/received")
    async def received() -> list[dict]:
        return app.state.received

    return app


if __name__ == "__main__":
    import uvicorn

    port, secret = int(sys.argv[1]), os.environ["EJSIKA_DEMO_RECEIVER_SECRET"]
    uvicorn.run(receiver_app(secret), host="127.0.0.1", port=port, log_level="warning")
