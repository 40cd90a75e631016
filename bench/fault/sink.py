"""A slow SMTP sink that records the Message-ID of every message it accepts.

    python -m bench.fault.sink --port 2525 --out sink.jsonl [--delay-ms 20-50]

One JSON line per accepted message, written and flushed just before the
"250" reply: ``{"mid": "<reminder.12@…>", "t": 1700000000.1, "gone": false}``.
A client that hangs up during the delay (a worker killed mid-send) gets
nothing recorded: aiosmtpd cancels the handler, like a server that had not yet
taken the message. ``gone`` marks the rare message recorded after its client
had gone. So a duplicate here means a resend of a message the sink had
accepted: the window between the "250" and the row saying "sent".

The sink takes ``--delay-ms`` (a random value in the range) per message, so
that 2,000 messages take a while and a kill lands in the middle of sends.
It writes to a file, never to the PostgreSQL under test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import threading
import time
from email.parser import BytesHeaderParser
from typing import Any, TextIO

from aiosmtpd.controller import Controller


class RecordingHandler:
    """Accepts every message after a delay; records its Message-ID first."""

    def __init__(self, out: TextIO, delay: tuple[float, float]) -> None:
        self.out = out
        self.delay = delay
        self.parser = BytesHeaderParser()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        headers = self.parser.parsebytes(envelope.original_content or envelope.content)
        await asyncio.sleep(random.uniform(*self.delay))
        transport = getattr(server, "transport", None)
        gone = transport is None or transport.is_closing()
        record = {"mid": str(headers.get("Message-ID", "")).strip(), "t": time.time(), "gone": gone}
        self.out.write(json.dumps(record) + "\n")
        self.out.flush()
        return "250 Message accepted for delivery"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--delay-ms", default="20-50", help="per message, e.g. 20-50 or 0")
    args = parser.parse_args()
    low, _, high = args.delay_ms.partition("-")
    delay = (float(low) / 1000, float(high or low) / 1000)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with open(args.out, "a", encoding="utf-8") as out:
        controller = Controller(
            RecordingHandler(out, delay),
            hostname="127.0.0.1",
            port=args.port,
            data_size_limit=10 * 1024 * 1024,
        )
        controller.start()
        try:
            stop.wait()
        finally:
            controller.stop()


if __name__ == "__main__":
    main()
