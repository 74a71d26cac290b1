//! Continuous batching: sentences of requests submitted while others decode join the running
//! batch between steps and leave it when they finish, and every sentence gets exactly the
//! output it gets alone, for greedy, beam and sampling.

mod common;

use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use transduce::search::{BeamOptions, DecodeOptions, SamplingOptions, Strategy};
use transduce::translate::scheduler::{Refused, Scheduler, SchedulerOptions, SchedulerStats};
use transduce::{Translation, Translator};

use common::{tiny_corpus as corpus, tiny_hf};

fn options(strategy: Strategy) -> DecodeOptions {
    DecodeOptions { strategy, max_len: 30, ..DecodeOptions::default() }
}

/// Submits `lines` one request at a time, each once the scheduler has taken a few more steps,
/// so that requests join a batch that is decoding; returns the translations in order.
fn staggered(scheduler: &Scheduler, lines: &[String], opts: DecodeOptions) -> Vec<Translation> {
    let (tx, rx) = mpsc::channel();
    let mut tickets = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let tx = tx.clone();
        let reply = Box::new(move |r: transduce::Result<Vec<Translation>>| tx.send((i, r)).unwrap());
        tickets.push(scheduler.submit(vec![line.clone()], opts, reply).unwrap());
        // once it has joined, two more steps before the next one
        wait_for(scheduler, |s| s.waiting == 0);
        let target = scheduler.stats().steps + 2;
        wait_for(scheduler, |s| s.steps >= target || s.decoding == 0);
    }
    drop(tx);
    let mut out: Vec<Option<Translation>> = vec![None; lines.len()];
    for (i, r) in rx.iter() {
        out[i] = Some(r.unwrap().pop().unwrap());
    }
    out.into_iter().map(Option::unwrap).collect()
}

/// Polls the scheduler's counters until `done` holds (at most 10 s).
fn wait_for(scheduler: &Scheduler, done: impl Fn(&SchedulerStats) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(&scheduler.stats()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// How the test's requests arrive.
#[derive(Clone, Copy)]
enum Arrival {
    /// One at a time, each after the one before has joined and decoded two steps.
    Staggered,
    /// All at once: a small budget makes most wait and join as rows free up (sharing that
    /// does not depend on how fast this thread polls, so a busy machine cannot undo it).
    AllAtOnce,
}

fn all_at_once(scheduler: &Scheduler, lines: &[String], opts: DecodeOptions) -> Vec<Translation> {
    let (tx, rx) = mpsc::channel();
    let tickets: Vec<_> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let tx = tx.clone();
            let reply = Box::new(move |r: transduce::Result<Vec<Translation>>| tx.send((i, r)).unwrap());
            scheduler.submit(vec![line.clone()], opts, reply).unwrap()
        })
        .collect();
    drop(tx);
    let mut out: Vec<Option<Translation>> = vec![None; lines.len()];
    for (i, r) in rx.iter() {
        out[i] = Some(r.unwrap().pop().unwrap());
    }
    drop(tickets);
    out.into_iter().map(Option::unwrap).collect()
}

fn check_alone_equals_continuous(opts: DecodeOptions, budget: usize, arrival: Arrival) {
    check_alone_equals_continuous_on(opts, budget, arrival, 1)
}

fn check_alone_equals_continuous_on(opts: DecodeOptions, budget: usize, arrival: Arrival, workers: usize) {
    let translator = Arc::new(Translator::load(&tiny_hf()).unwrap());
    let lines = corpus(24);
    let alone: Vec<Translation> =
        lines.iter().map(|l| translator.translate(&[l.as_str()], &opts).unwrap().pop().unwrap()).collect();
    // how far requests overlap depends on how promptly this thread runs beside the scheduler's
    // (tests run in parallel on two cores): a run that hardly shared its batch tested little,
    // so it is run again, up to five times; every run's outputs are checked
    let mut occupancies = Vec::new();
    for _ in 0..5 {
        let options = SchedulerOptions { max_tokens: budget, workers, ..SchedulerOptions::default() };
        let scheduler = Scheduler::start(translator.clone(), options).unwrap();
        let together = match arrival {
            Arrival::Staggered => staggered(&scheduler, &lines, opts),
            Arrival::AllAtOnce => all_at_once(&scheduler, &lines, opts),
        };
        let stats = scheduler.stats();
        let per_worker = scheduler.worker_stats();
        assert_eq!(per_worker.len(), workers);
        assert!(per_worker.iter().all(|w| w.sentences > 0), "every worker decoded: {per_worker:?}");
        for (i, (a, t)) in alone.iter().zip(&together).enumerate() {
            assert_eq!(a, t, "line {i} ({:?}) decoded in the shared batch differs from alone", lines[i]);
        }
        assert_eq!(stats.sentences, lines.len() as u64);
        assert_eq!((stats.waiting, stats.decoding), (0, 0));
        // the batch really was shared: more than one sentence per step on average, in every worker
        occupancies
            .push(per_worker.iter().map(|w| w.step_sentences as f64 / w.steps as f64).fold(f64::INFINITY, f64::min));
        if occupancies.last().is_some_and(|&o| o > 1.1) {
            return;
        }
    }
    panic!("the batch was hardly shared in five runs: mean occupancies {occupancies:.2?}");
}

#[test]
fn greedy_sentences_joining_mid_decoding_get_their_alone_output() {
    check_alone_equals_continuous(options(Strategy::Greedy), 4096, Arrival::Staggered);
}

#[test]
fn beam_sentences_joining_mid_decoding_get_their_alone_output() {
    let beam = BeamOptions { beam: 4, n_best: 2, ..BeamOptions::default() };
    check_alone_equals_continuous(options(Strategy::Beam(beam)), 4096, Arrival::Staggered);
}

#[test]
fn sampled_sentences_joining_mid_decoding_get_their_alone_output() {
    let sampling = SamplingOptions { seed: 7, top_k: 20, ..SamplingOptions::default() };
    check_alone_equals_continuous(options(Strategy::Sample(sampling)), 4096, Arrival::Staggered);
}

#[test]
fn a_small_token_budget_makes_sentences_wait_and_changes_no_output() {
    // room for about two sentences at a time: the others wait, then join as rows free up
    let beam = BeamOptions { beam: 2, ..BeamOptions::default() };
    check_alone_equals_continuous(options(Strategy::Beam(beam)), 100, Arrival::AllAtOnce);
}

#[test]
fn two_workers_share_the_requests_and_change_no_output() {
    // requests go to the less loaded worker; each worker batches its own, on one thread
    let beam = BeamOptions { beam: 2, ..BeamOptions::default() };
    check_alone_equals_continuous_on(options(Strategy::Beam(beam)), 100, Arrival::AllAtOnce, 2);
    check_alone_equals_continuous_on(options(Strategy::Greedy), 60, Arrival::AllAtOnce, 2);
}

#[test]
fn requests_with_several_lines_blank_lines_and_different_options_are_answered_in_order() {
    let translator = Arc::new(Translator::load(&tiny_hf()).unwrap());
    let scheduler = Scheduler::start(translator.clone(), SchedulerOptions::default()).unwrap();
    let lines = corpus(6);
    let mut request: Vec<String> = lines.clone();
    request.insert(2, "   ".into());
    request.push(String::new());
    let greedy = options(Strategy::Greedy);
    let beam = options(Strategy::Beam(BeamOptions { beam: 3, ..BeamOptions::default() }));
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| scheduler.translate(request.clone(), greedy).unwrap());
        let b = s.spawn(|| scheduler.translate(request.clone(), beam).unwrap());
        (a.join().unwrap(), b.join().unwrap())
    });
    let refs: Vec<&str> = request.iter().map(String::as_str).collect();
    assert_eq!(a, translator.translate(&refs, &greedy).unwrap());
    assert_eq!(b, translator.translate(&refs, &beam).unwrap());
    assert_eq!(a[2].text(), "");
    assert!(scheduler.translate(Vec::new(), greedy).unwrap().is_empty());
}

#[test]
fn a_full_queue_refuses_instead_of_growing() {
    let translator = Arc::new(Translator::load(&tiny_hf()).unwrap());
    let scheduler =
        Scheduler::start(translator, SchedulerOptions { max_tokens: 64, queue: 8, ..SchedulerOptions::default() })
            .unwrap();
    let lines = corpus(40);
    let mut refused = 0;
    let mut tickets = Vec::new();
    let (tx, rx) = mpsc::channel();
    for chunk in lines.chunks(4) {
        let tx = tx.clone();
        match scheduler.submit(chunk.to_vec(), options(Strategy::Greedy), Box::new(move |r| tx.send(r).unwrap())) {
            Ok(t) => tickets.push(t),
            Err(Refused::Full { capacity, .. }) => {
                assert_eq!(capacity, 8);
                refused += 1;
            }
            Err(e) => panic!("unexpected refusal: {e}"),
        }
    }
    drop(tx);
    assert!(refused > 0, "10 requests of 4 sentences fit a queue of 8");
    let answered = rx.iter().inspect(|r| assert!(r.is_ok(), "{r:?}")).count();
    assert_eq!(answered, tickets.len());
    assert_eq!(scheduler.stats().waiting, 0);
}

#[test]
fn bad_options_are_refused_at_submission_with_the_option_named() {
    let translator = Arc::new(Translator::load(&tiny_hf()).unwrap());
    let scheduler = Scheduler::start(translator, SchedulerOptions::default()).unwrap();
    let opts = options(Strategy::Beam(BeamOptions { beam: 0, ..BeamOptions::default() }));
    let err = scheduler.submit(vec!["x".into()], opts, Box::new(|_| {})).err().expect("beam 0 is refused");
    assert!(matches!(err, Refused::Invalid(_)), "{err}");
    assert!(err.to_string().contains("beam"), "{err}");
    let translator = Arc::new(Translator::load(&tiny_hf()).unwrap());
    let zero = Scheduler::start(translator, SchedulerOptions { workers: 0, ..SchedulerOptions::default() });
    assert!(zero.err().is_some_and(|e| e.to_string().contains("workers")));
}
