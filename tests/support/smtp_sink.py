"""A real SMTP server for the integration tests: aiosmtpd on 127.0.0.1:PORT that saves every message it
accepts as FOLDER/NNNN.eml (with an X-Envelope-To header naming the envelope recipients), prints
"ready" once it listens, and stops when its standard input closes (the test ended or died).

Usage: python3 tests/support/smtp_sink.py PORT FOLDER
"""

import os
import sys

from aiosmtpd.controller import Controller


class SaveToFolder:
    def __init__(self, folder):
        self.folder = folder
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        path = os.path.join(self.folder, "%04d.eml" % self.count)
        partial = path + ".partial"
        with open(partial, "wb") as out:
            out.write(("X-Envelope-To: %s\r\n" % ",".join(envelope.rcpt_tos)).encode())
            out.write(envelope.original_content or envelope.content)
        os.replace(partial, path)
        return "250 Message accepted for delivery"


def main():
    port, folder = int(sys.argv[1]), sys.argv[2]
    os.makedirs(folder, exist_ok=True)
    controller = Controller(SaveToFolder(folder), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
