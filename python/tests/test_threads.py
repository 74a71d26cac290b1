"""The GIL is released while the library works: another Python thread runs meanwhile, and two
threads translating with one Translator at once get what each gets alone."""

import threading
import time

import transduce
from conftest import SENTENCES


def test_other_threads_run_while_translating(tiny):
    translator = transduce.Translator(tiny, threads=1)
    work = [s for s in SENTENCES if s] * 150
    started, done = threading.Event(), threading.Event()
    ticks_while_translating = []

    def translate():
        started.set()
        translator.translate(work, beam=4)
        done.set()

    def tick():
        started.wait()
        # by the time this sleep ends the other thread is inside the native call; a held GIL
        # would keep this thread from running again until that call returned
        time.sleep(0.05)
        n = 0
        while not done.is_set():
            n += 1
        ticks_while_translating.append(n)

    threads = [threading.Thread(target=translate), threading.Thread(target=tick)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ticks_while_translating[0] > 0, "no Python ran while translating: the GIL was held"


def test_two_threads_share_one_translator(tiny):
    translator = transduce.Translator(tiny, threads=2)
    inputs = [[s for s in SENTENCES if s] * 20, list(reversed([s for s in SENTENCES if s])) * 20]
    alone = [[r.text for r in translator.translate(x, beam=4)] for x in inputs]
    together = [None, None]

    def run(i):
        together[i] = [r.text for r in translator.translate(inputs[i], beam=4)]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert together == alone
