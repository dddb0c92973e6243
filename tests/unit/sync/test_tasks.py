"""Background tasks: one deadline for all of them, and a bounded work
queue."""
import logging
import threading
import time

from sio_redis_streams.sync.tasks import Tasks, WorkQueue


def test_join_has_one_deadline_for_every_task():
    """Before, each task had the whole timeout in turn: three stuck tasks
    took three times as long."""
    release = threading.Event()
    tasks = Tasks(None, logging.getLogger('test'))
    for n in range(3):
        tasks.start(f'stuck {n}', lambda: release.wait(10))
    started = time.monotonic()
    assert not tasks.join(0.3)
    assert time.monotonic() - started < 0.6
    release.set()
    assert tasks.join(5)


def test_a_crashing_task_is_logged(caplog):
    tasks = Tasks(None, logging.getLogger('test'))
    tasks.start('bad', lambda: 1 / 0)
    assert tasks.join(5)
    assert 'background task bad crashed' in caplog.text


def test_the_work_queue_is_bounded_and_keeps_order():
    dropped = []
    done = []
    queue = WorkQueue(3, lambda: dropped.append(1), logging.getLogger('t'))
    for n in range(5):
        queue.submit(lambda n=n: done.append(n))
    assert len(dropped) == 2
    stopping = threading.Event()
    worker = threading.Thread(target=queue.run, args=(stopping,))
    worker.start()
    deadline = time.monotonic() + 5
    while len(done) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    stopping.set()
    queue.stop()
    worker.join(5)
    assert done == [0, 1, 2]
    assert not worker.is_alive()


def test_a_failing_job_does_not_stop_the_queue(caplog):
    done = []
    queue = WorkQueue(10, lambda: None, logging.getLogger('test'))
    queue.submit(lambda: 1 / 0)
    queue.submit(lambda: done.append(1))
    queue.stop()
    queue.run(threading.Event())
    assert done == [1]
    assert 'error handling a cluster message' in caplog.text
