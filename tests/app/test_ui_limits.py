"""segcore.app.ui: the server-wide cap on segmentations running at once."""

from __future__ import annotations

import threading
import time

from segcore.app import ui


def test_no_more_than_max_concurrent_segmentations_run_at_once():
    running, peak, lock = [0], [0], threading.Lock()

    def work() -> None:
        with ui.segmentation_slot():
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            time.sleep(0.05)
            with lock:
                running[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(3 * ui.MAX_CONCURRENT)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 1 <= peak[0] <= ui.MAX_CONCURRENT and running[0] == 0
