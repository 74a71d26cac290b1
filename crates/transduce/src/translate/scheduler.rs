//! Continuous batching: one thread decodes the sentences of every request in shared batches
//! that change between decoding steps. A finished sentence leaves at once and a waiting one
//! joins at the next step (no batch barrier), within a token budget; each sentence gets the
//! output it gets alone. Requests with different decoding options decode in separate lanes,
//! stepped in turn. With several workers ([`SchedulerOptions::workers`]) each request goes to
//! the least loaded one, and the workers decode side by side, each on its share of the threads
//! (CTranslate2's `inter_threads`, but with batching inside each).
//!
//! ```
//! use std::sync::{mpsc, Arc, Mutex, MutexGuard};
//! use transduce::translate::scheduler::{Scheduler, SchedulerOptions};
//! use transduce::{DecodeOptions, Translator};
//!
//! # let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/hf_marian/tiny");
//! let translator = Arc::new(Translator::load(dir.as_ref())?);
//! let scheduler = Scheduler::start(translator, SchedulerOptions::default())?;
//! let (tx, rx) = mpsc::channel();
//! let lines = vec!["Une femme aime le chien.".to_string()];
//! let _ticket = scheduler.submit(lines, DecodeOptions::default(), Box::new(move |r| tx.send(r).unwrap()))?;
//! let translations = rx.recv().unwrap()?; // one Translation per line, as Translator::translate
//! # assert_eq!(translations.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::{Input, Prepared, Translation, Translator};
use crate::error::{Error, Result};
use crate::model::{DecoderState, Memory};
use crate::model_dir::Languages;
use crate::search::{DecodeOptions, Decoding, Finished, Sentence, StepModel};
use crate::text::languages::Direction;

/// How a [`Scheduler`] batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerOptions {
    /// Most source tokens in a lane's batch: rows (beam copies included) × the longest source
    /// + 1. A sentence longer than the budget decodes alone.
    pub max_tokens: usize,
    /// Most sentences waiting to join a batch; [`Scheduler::submit`] refuses more
    /// ([`Refused::Full`]) rather than let memory grow (a request is always taken when none
    /// waits, however many sentences it has).
    pub queue: usize,
    /// Batches decoded side by side, each by a thread of its own over its share of the
    /// translator's threads: on few cores two single-threaded batches keep both busy without
    /// the hand-offs one two-threaded batch pays at every small product. A worker whose
    /// siblings are idle decodes on all the threads, so a lone request keeps its latency.
    /// 1: one batch on all the threads.
    pub workers: usize,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        SchedulerOptions { max_tokens: 8192, queue: 4096, workers: 1 }
    }
}

/// Why [`Scheduler::submit`] did not take a request.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The queue holds `waiting` of at most `capacity` sentences; try again later.
    #[error("the translation queue is full ({waiting} of {capacity} sentences waiting)")]
    Full { waiting: usize, capacity: usize },
    /// The scheduler is shutting down.
    #[error("the translator is shutting down")]
    Stopped,
    /// The request itself is wrong (options, or text the tokenizer refuses).
    #[error(transparent)]
    Invalid(#[from] Error),
}

/// Called once with a request's translations (one per line, in order) or the error that
/// stopped it; runs on the scheduler's thread, so it should only hand the result on.
pub type Reply = Box<dyn FnOnce(Result<Vec<Translation>>) + Send>;

/// A submitted request: dropping it or calling [`Ticket::cancel`] tells the scheduler the
/// answer is no longer wanted, and its sentences that have not started are dropped.
pub struct Ticket {
    cancelled: Arc<AtomicBool>,
}

impl Ticket {
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// Keeps the request alive after the ticket is dropped.
    pub fn detach(self) {
        std::mem::forget(self);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// Counters since the start, and the current load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SchedulerStats {
    /// Sentences waiting to join a batch.
    pub waiting: usize,
    /// Sentences in a batch now.
    pub decoding: usize,
    /// Decoding steps taken (over all lanes).
    pub steps: u64,
    /// Sentences decoded by those steps, summed (÷ steps: the mean batch occupancy).
    pub step_sentences: u64,
    /// Sentences finished.
    pub sentences: u64,
    /// Output tokens written (EOS included).
    pub tokens: u64,
}

#[derive(Default)]
struct Counters {
    waiting: AtomicUsize,
    decoding: AtomicUsize,
    steps: AtomicU64,
    step_sentences: AtomicU64,
    sentences: AtomicU64,
    tokens: AtomicU64,
}

impl Counters {
    /// Sentences a worker holds, waiting or decoding.
    fn load(&self) -> usize {
        self.waiting.load(Ordering::SeqCst) + self.decoding.load(Ordering::SeqCst)
    }
}

/// Which threads a worker decodes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Threads {
    /// Its own share: other workers have sentences too.
    Own,
    /// All the translator's: the other workers are idle (or there are none), so a lone request
    /// gets the latency of every core.
    All,
}

/// Serves translation requests of one [`Translator`] from threads of its own, batching the
/// sentences of concurrent requests together. Dropping it finishes the requests it holds.
pub struct Scheduler {
    workers: Vec<WorkerHandle>,
    translator: Arc<Translator>,
    options: SchedulerOptions,
}

/// One decoding thread, as the submitting side sees it.
struct WorkerHandle {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

/// A request on its way to the scheduler thread.
struct Job {
    sentences: Vec<Prepared>,
    blank: Vec<bool>,
    opts: DecodeOptions,
    reply: Reply,
    cancelled: Arc<AtomicBool>,
}

impl Scheduler {
    pub fn start(translator: Arc<Translator>, options: SchedulerOptions) -> Result<Self> {
        if options.max_tokens == 0 {
            return Err(Error::option("max_tokens", "must be at least 1"));
        }
        if options.workers == 0 {
            return Err(Error::option("workers", "must be at least 1"));
        }
        if translator.models() > 1 {
            return Err(Error::Input(format!(
                "continuous batching decodes one model; this translator is an ensemble of {}",
                translator.models()
            )));
        }
        // each worker's share of the translator's threads
        let threads = (translator.install(rayon::current_num_threads) / options.workers).max(1);
        let mut scheduler = Scheduler { workers: Vec::with_capacity(options.workers), translator, options };
        let all_counters: Vec<Arc<Counters>> = (0..options.workers).map(|_| Arc::default()).collect();
        for (i, counters) in all_counters.iter().enumerate() {
            let pool = if options.workers > 1 {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(move |t| format!("transduce-scheduler-{i}-{t}"))
                    .build()
                    .map_err(|e| Error::Input(format!("cannot start the scheduler's threads: {e}")))?;
                Some(pool)
            } else {
                None
            };
            let (jobs, rx) = mpsc::channel();
            let worker = Worker {
                translator: scheduler.translator.clone(),
                counters: counters.clone(),
                siblings: all_counters.iter().filter(|c| !Arc::ptr_eq(c, counters)).cloned().collect(),
                has_own_threads: pool.is_some(),
                options,
                lanes: Vec::new(),
                next_id: 0,
            };
            let thread = std::thread::Builder::new()
                .name(format!("transduce-scheduler-{i}"))
                .spawn(move || worker.run(rx, pool))
                .map_err(|e| Error::Input(format!("cannot start the scheduler thread: {e}")))?;
            let counters = counters.clone();
            scheduler.workers.push(WorkerHandle { jobs: Some(jobs), thread: Some(thread), counters });
        }
        Ok(scheduler)
    }

    pub fn translator(&self) -> &Translator {
        &self.translator
    }

    /// Queues `lines` for translation under `opts`; `reply` gets the result. Lines are
    /// tokenized here, on the caller's thread.
    pub fn submit(
        &self,
        lines: Vec<String>,
        opts: DecodeOptions,
        reply: Reply,
    ) -> std::result::Result<Ticket, Refused> {
        self.submit_in(lines, None, opts, reply)
    }

    /// [`Scheduler::submit`] with the source and target language of every line, for a
    /// multilingual model.
    pub fn submit_in(
        &self,
        lines: Vec<String>,
        languages: Option<&Languages>,
        opts: DecodeOptions,
        reply: Reply,
    ) -> std::result::Result<Ticket, Refused> {
        self.translator.check(&opts)?;
        let direction = languages.map(|l| Direction { source: &l.source, target: &l.target });
        let worker = self.workers.iter().min_by_key(|w| w.counters.load()).ok_or(Refused::Stopped)?;
        let jobs = worker.jobs.as_ref().ok_or(Refused::Stopped)?;
        let mut sentences = Vec::with_capacity(lines.len());
        let mut blank = Vec::with_capacity(lines.len());
        for (i, text) in lines.iter().enumerate() {
            let input = Input { direction, ..Input::new(text, i as u64) };
            let prepared = self.translator.prepare(&input)?;
            blank.push(prepared.is_blank(&input));
            sentences.push(prepared);
        }
        let n = blank.iter().filter(|&&b| !b).count();
        let capacity = self.options.queue;
        let others: usize = self
            .workers
            .iter()
            .filter(|w| !Arc::ptr_eq(&w.counters, &worker.counters))
            .map(|w| w.counters.waiting.load(Ordering::SeqCst))
            .sum();
        let waiting = others + worker.counters.waiting.fetch_add(n, Ordering::SeqCst);
        // an empty queue takes any request (one request's size is bounded by its caller)
        if waiting > 0 && waiting + n > capacity {
            worker.counters.waiting.fetch_sub(n, Ordering::SeqCst);
            return Err(Refused::Full { waiting, capacity });
        }
        let cancelled = Arc::new(AtomicBool::new(false));
        let job = Job { sentences, blank, opts, reply, cancelled: cancelled.clone() };
        if jobs.send(job).is_err() {
            worker.counters.waiting.fetch_sub(n, Ordering::SeqCst);
            return Err(Refused::Stopped);
        }
        Ok(Ticket { cancelled })
    }

    /// [`Scheduler::submit`] waiting for the answer on this thread.
    pub fn translate(&self, lines: Vec<String>, opts: DecodeOptions) -> std::result::Result<Vec<Translation>, Refused> {
        let (tx, rx) = mpsc::channel();
        let _ticket = self.submit(lines, opts, Box::new(move |r| drop(tx.send(r))))?;
        rx.recv().map_err(|_| Refused::Stopped)?.map_err(Refused::Invalid)
    }

    /// Summed over the workers.
    pub fn stats(&self) -> SchedulerStats {
        self.worker_stats().into_iter().fold(SchedulerStats::default(), |a, b| SchedulerStats {
            waiting: a.waiting + b.waiting,
            decoding: a.decoding + b.decoding,
            steps: a.steps + b.steps,
            step_sentences: a.step_sentences + b.step_sentences,
            sentences: a.sentences + b.sentences,
            tokens: a.tokens + b.tokens,
        })
    }

    /// Each worker's own counters ([`SchedulerOptions::workers`] of them).
    pub fn worker_stats(&self) -> Vec<SchedulerStats> {
        self.workers
            .iter()
            .map(|w| {
                let c = &w.counters;
                SchedulerStats {
                    waiting: c.waiting.load(Ordering::Relaxed),
                    decoding: c.decoding.load(Ordering::Relaxed),
                    steps: c.steps.load(Ordering::Relaxed),
                    step_sentences: c.step_sentences.load(Ordering::Relaxed),
                    sentences: c.sentences.load(Ordering::Relaxed),
                    tokens: c.tokens.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    pub fn options(&self) -> SchedulerOptions {
        self.options
    }

    /// Stops taking requests, finishes those it holds, and waits for the threads.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        for worker in &mut self.workers {
            worker.jobs = None;
        }
        for worker in &mut self.workers {
            if let Some(thread) = worker.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A request on the scheduler thread: its sentences' translations as they finish.
struct Pending {
    translations: Vec<Option<Translation>>,
    remaining: usize,
    reply: Option<Reply>,
    cancelled: Arc<AtomicBool>,
    failed: bool,
}

impl Pending {
    fn finish_one(&mut self, index: usize, translation: Translation) {
        self.translations[index] = Some(translation);
        self.remaining -= 1;
        if self.remaining == 0 {
            if let Some(reply) = self.reply.take() {
                let out = std::mem::take(&mut self.translations)
                    .into_iter()
                    .map(|t| t.expect("every sentence finished"))
                    .collect();
                reply(Ok(out));
            }
        }
    }

    fn fail(&mut self, error: &Error) {
        self.failed = true;
        if let Some(reply) = self.reply.take() {
            reply(Err(Error::Input(error.to_string())));
        }
    }
}

/// A request's state is only touched by the scheduler thread: a poisoned lock (a panicking
/// reply) leaves nothing half-written to protect.
trait LockOk {
    fn lock_ok(&self) -> MutexGuard<'_, Pending>;
}

impl LockOk for Mutex<Pending> {
    fn lock_ok(&self) -> MutexGuard<'_, Pending> {
        self.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One sentence of a request, waiting or decoding.
struct Unit {
    request: Arc<Mutex<Pending>>,
    index: usize,
    prepared: Prepared,
}

/// The sentences decoding under one set of options.
struct Lane {
    opts: DecodeOptions,
    decoding: Decoding<DecoderState>,
    waiting: VecDeque<Unit>,
    decoding_units: HashMap<u64, Unit>,
    /// The memory of the sentences admitted last: the step function reads only the model and
    /// the device through it (each sentence's memory lives in the decoding state).
    memory: Option<Memory>,
}

struct Worker {
    translator: Arc<Translator>,
    counters: Arc<Counters>,
    /// The other workers' counters: while they are idle this one decodes on all the threads.
    siblings: Vec<Arc<Counters>>,
    has_own_threads: bool,
    options: SchedulerOptions,
    lanes: Vec<Lane>,
    next_id: u64,
}

impl Worker {
    /// Serves jobs until the sender is gone and every lane is empty, decoding on `own` threads
    /// while other workers are busy and on all of the translator's otherwise.
    fn run(mut self, mut jobs: mpsc::Receiver<Job>, own: Option<rayon::ThreadPool>) {
        let translator = self.translator.clone();
        loop {
            if self.lanes.is_empty() {
                // idle: wait outside any thread pool
                match jobs.recv() {
                    Ok(job) => self.accept(job),
                    Err(_) => return,
                }
            }
            // the receiver moves along (it may be sent to a pool thread, not shared with one)
            jobs = match (&own, self.threads()) {
                (Some(pool), Threads::Own) => pool.install(|| {
                    self.serve(&jobs, Threads::Own);
                    jobs
                }),
                _ => translator.install(|| {
                    self.serve(&jobs, Threads::All);
                    jobs
                }),
            };
        }
    }

    fn threads(&self) -> Threads {
        if self.has_own_threads && self.siblings.iter().any(|c| c.load() > 0) {
            Threads::Own
        } else {
            Threads::All
        }
    }

    /// Takes jobs and steps the lanes until they are empty or the threads to use change.
    fn serve(&mut self, jobs: &mpsc::Receiver<Job>, threads: Threads) {
        loop {
            while let Ok(job) = jobs.try_recv() {
                self.accept(job);
            }
            for lane in 0..self.lanes.len() {
                self.advance(lane);
            }
            self.lanes.retain(|l| !l.waiting.is_empty() || !l.decoding.is_empty());
            if self.lanes.is_empty() || self.threads() != threads {
                return;
            }
        }
    }

    fn accept(&mut self, job: Job) {
        let Job { sentences, blank, opts, reply, cancelled } = job;
        let n = sentences.len();
        let request = Arc::new(Mutex::new(Pending {
            translations: vec![None; n],
            remaining: n,
            reply: Some(reply),
            cancelled,
            failed: false,
        }));
        let lane = match self.lanes.iter().position(|l| l.opts == opts) {
            Some(l) => l,
            None => match Decoding::new(&opts) {
                Ok(decoding) => {
                    self.lanes.push(Lane {
                        opts,
                        decoding,
                        waiting: VecDeque::new(),
                        decoding_units: HashMap::new(),
                        memory: None,
                    });
                    self.lanes.len() - 1
                }
                Err(e) => {
                    self.counters.waiting.fetch_sub(blank.iter().filter(|&&b| !b).count(), Ordering::SeqCst);
                    request.lock_ok().fail(&e.into());
                    return;
                }
            },
        };
        if n == 0 {
            if let Some(reply) = request.lock_ok().reply.take() {
                reply(Ok(Vec::new()));
            }
            return;
        }
        for (index, (prepared, blank)) in sentences.into_iter().zip(blank).enumerate() {
            if blank {
                request.lock_ok().finish_one(index, Translation::blank(&prepared));
            } else {
                self.lanes[lane].waiting.push_back(Unit { request: request.clone(), index, prepared });
            }
        }
    }

    /// Admits waiting sentences within the budget, then decodes one step of the lane.
    fn advance(&mut self, l: usize) {
        if let Err(e) = self.admit(l).and_then(|()| self.step(l)) {
            self.abandon(l, &e);
        }
    }

    fn admit(&mut self, l: usize) -> Result<()> {
        let lane = &mut self.lanes[l];
        let group = lane.decoding.group();
        let mut longest = lane.decoding_units.values().map(|u| u.prepared.ids.len()).max().unwrap_or(0);
        let mut count = lane.decoding.len();
        let mut joining: Vec<Unit> = Vec::new();
        while let Some(unit) = lane.waiting.front() {
            let gone = {
                let r = unit.request.lock_ok();
                r.failed || r.cancelled.load(Ordering::Relaxed)
            };
            if gone {
                lane.waiting.pop_front();
                self.counters.waiting.fetch_sub(1, Ordering::SeqCst);
                continue;
            }
            let len = longest.max(unit.prepared.ids.len());
            let fits = (count + 1) * group * (len + 1) <= self.options.max_tokens;
            if !fits && count > 0 {
                break;
            }
            longest = len;
            count += 1;
            joining.extend(lane.waiting.pop_front());
        }
        if joining.is_empty() {
            return Ok(());
        }
        self.counters.waiting.fetch_sub(joining.len(), Ordering::SeqCst);
        self.counters.decoding.fetch_add(joining.len(), Ordering::SeqCst);
        let sources: Vec<&[u32]> = joining.iter().map(|u| &u.prepared.ids[..]).collect();
        let memory = self.translator.encode(&sources)?;
        let prepared: Vec<_> = joining.iter().map(|u| &u.prepared).collect();
        let stepper = self.translator.stepper(&memory).with_candidates(self.translator.candidates(&prepared));
        let state = stepper.start(group)?;
        let mut sentences = Vec::with_capacity(joining.len());
        for unit in joining {
            let id = self.next_id;
            self.next_id += 1;
            let target = unit.prepared.target(&lane.opts);
            sentences.push(Sentence {
                id,
                max_len: target.max_len,
                prefix: target.prefix.to_vec(),
                tags: target.tags,
                stream: unit.index as u64,
            });
            lane.decoding_units.insert(id, unit);
        }
        lane.decoding.admit(&stepper, state, sentences)?;
        lane.memory = Some(memory);
        Ok(())
    }

    fn step(&mut self, l: usize) -> Result<()> {
        let lane = &mut self.lanes[l];
        let Some(memory) = &lane.memory else {
            return Ok(());
        };
        if lane.decoding.is_empty() {
            return Ok(());
        }
        let live = lane.decoding.len() as u64;
        let finished = lane.decoding.step(&self.translator.stepper(memory))?;
        self.counters.steps.fetch_add(1, Ordering::Relaxed);
        self.counters.step_sentences.fetch_add(live, Ordering::Relaxed);
        for Finished { id, hypotheses } in finished {
            let Some(unit) = lane.decoding_units.remove(&id) else {
                continue;
            };
            self.counters.decoding.fetch_sub(1, Ordering::SeqCst);
            self.counters.sentences.fetch_add(1, Ordering::Relaxed);
            let tokens = hypotheses.first().map_or(0, |h| h.token_logp.len());
            self.counters.tokens.fetch_add(tokens as u64, Ordering::Relaxed);
            let mut request = unit.request.lock_ok();
            if request.failed {
                continue;
            }
            match self.translator.outputs(&unit.prepared, hypotheses, &lane.opts) {
                Ok(outputs) => {
                    request.finish_one(unit.index, Translation { outputs, truncated: unit.prepared.truncated })
                }
                Err(e) => request.fail(&e),
            }
        }
        if lane.decoding.is_empty() {
            lane.memory = None;
        }
        Ok(())
    }

    /// A lane whose step failed: every request in it gets the error, and the lane starts over.
    fn abandon(&mut self, l: usize, error: &Error) {
        let lane = &mut self.lanes[l];
        self.counters.decoding.fetch_sub(lane.decoding_units.len(), Ordering::SeqCst);
        self.counters.waiting.fetch_sub(lane.waiting.len(), Ordering::SeqCst);
        for unit in lane.decoding_units.drain().map(|(_, u)| u).chain(lane.waiting.drain(..)) {
            unit.request.lock_ok().fail(error);
        }
        lane.memory = None;
        if let Ok(fresh) = Decoding::new(&lane.opts) {
            lane.decoding = fresh;
        }
    }
}
