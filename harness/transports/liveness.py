"""Watching an SSH board for signs of life while the harness waits on it.

paramiko's own keepalive (send_ignore) wants no answer, so a board whose link went silent looks
the same as a busy one until TCP gives up, many minutes later. The watcher asks the SSH server
for a reply every few seconds (a global request with want_reply, which every server must answer,
if only with a refusal) and closes the connection once none came for the board's liveness_s:
every wait on that connection then ends, and `silent` says why.
"""
import threading

# A request name no server acts on: OpenSSH and dropbear (svr-forward.c) answer it with a refusal,
# which is all the watcher needs (OpenSSH's own client sends the same name for the same purpose).
REQUEST = "keepalive@openssh.com"


class LivenessWatch:
    def __init__(self, transport, board_name: str, liveness_s: float, interval_s: float):
        self.transport, self.board_name = transport, board_name
        self.liveness_s, self.interval_s = liveness_s, interval_s
        self.silent = None  # why the connection was closed, once it was
        self._stopped = threading.Event()
        threading.Thread(target=self._watch, name=f"liveness {board_name}", daemon=True).start()

    def _watch(self):
        while not self._stopped.wait(self.interval_s) and self.transport.is_active():
            answered = threading.Event()
            # global_request(wait=True) has no timeout of its own: it waits in a thread of its
            # own, which ends when the answer comes or the connection is closed.
            threading.Thread(target=self._ask, args=(answered,), daemon=True).start()
            if not answered.wait(self.liveness_s) and not self._stopped.is_set():
                self.silent = f"board {self.board_name} silent for {self.liveness_s:g} s (liveness_s)"
                self.transport.close()
                return

    def _ask(self, answered: threading.Event):
        try:
            self.transport.global_request(REQUEST, wait=True)
        except Exception:  # a connection closing under the request: the watch loop sees it
            pass
        answered.set()

    def stop(self):
        self._stopped.set()
