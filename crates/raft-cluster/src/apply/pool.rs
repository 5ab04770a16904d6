//! The apply pool: a fixed set of threads that run the apply workers of many groups.
//!
//! Each group's worker keeps its own queue of jobs and is scheduled on the pool only
//! while it has some, so an idle group costs no thread and no wake-up. A worker runs
//! on one pool thread at a time (its jobs stay in order), for at most [`BUDGET`] jobs
//! before it goes to the back of the line, so a busy group does not starve the others.
//! A state machine that blocks holds one pool thread: size the pool for that.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};

use tracing::{debug, error};

use super::{ApplyJob, Worker};
use crate::state_machine::StateMachine;

/// Jobs a worker runs before it yields its thread to the next worker in line.
const BUDGET: usize = 256;

/// Something the pool runs.
trait Run: Send + Sync {
    /// Runs a while; true if it has more to do (it is queued again).
    fn run(&self) -> bool;
    /// `run` panicked: it must never run again, and say so to whoever feeds it.
    fn poison(&self);
}

/// The runnable workers, and whether the pool is shutting down.
#[derive(Default)]
struct Line {
    runnable: VecDeque<Arc<dyn Run>>,
    stopped: bool,
}

#[derive(Default)]
struct Shared {
    line: Mutex<Line>,
    ready: Condvar,
}

impl Shared {
    fn line(&self) -> MutexGuard<'_, Line> {
        // Workers run outside this lock; nothing can leave the line half-changed.
        self.line.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Stops the pool's threads when the last handle goes (once the line is empty).
struct Stopper(Arc<Shared>);

impl Drop for Stopper {
    fn drop(&mut self) {
        self.0.line().stopped = true;
        self.0.ready.notify_all();
    }
}

/// A handle to an apply pool. Cheap to clone; the threads end once every handle (and
/// every worker, which holds one) is gone.
#[derive(Clone)]
pub(crate) struct ApplyPool {
    stopper: Arc<Stopper>,
}

impl ApplyPool {
    /// Starts `threads` threads (at least one) named after `name`.
    pub(crate) fn start(name: &str, threads: usize) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        for i in 0..threads.max(1) {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("raft-apply-{name}-{i}"))
                .spawn(move || serve(&shared))?;
        }
        Ok(ApplyPool {
            stopper: Arc::new(Stopper(shared)),
        })
    }

    fn schedule(&self, work: Arc<dyn Run>) {
        let shared = &self.stopper.0;
        shared.line().runnable.push_back(work);
        shared.ready.notify_one();
    }
}

fn serve(shared: &Shared) {
    loop {
        let work = {
            let mut line = shared.line();
            loop {
                if let Some(w) = line.runnable.pop_front() {
                    break w;
                }
                if line.stopped {
                    debug!("apply pool thread stopped");
                    return;
                }
                line = shared.ready.wait(line).unwrap_or_else(|e| e.into_inner());
            }
        };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work.run())) {
            Ok(true) => shared.line().runnable.push_back(work),
            Ok(false) => {}
            Err(_) => {
                error!("a state machine panicked; its group's apply worker is stopped");
                work.poison();
            }
        }
    }
}

/// One group's apply worker on a pool: its queue of jobs and its state machine.
pub(crate) struct PooledWorker<SM: StateMachine> {
    jobs: Mutex<VecDeque<ApplyJob<SM>>>,
    /// In the pool's line or running: a job pushed meanwhile needs no scheduling.
    scheduled: AtomicBool,
    /// The state machine panicked: the worker takes no more jobs.
    poisoned: AtomicBool,
    worker: Mutex<Worker<SM>>,
    pool: ApplyPool,
    me: Weak<Self>,
}

impl<SM: StateMachine> PooledWorker<SM> {
    pub(super) fn new(worker: Worker<SM>, pool: &ApplyPool) -> Arc<Self> {
        Arc::new_cyclic(|me| PooledWorker {
            jobs: Mutex::new(VecDeque::new()),
            scheduled: AtomicBool::new(false),
            poisoned: AtomicBool::new(false),
            worker: Mutex::new(worker),
            pool: pool.clone(),
            me: me.clone(),
        })
    }

    fn jobs(&self) -> MutexGuard<'_, VecDeque<ApplyJob<SM>>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a job, and the worker on the pool if it is not there yet; false if the
    /// worker has stopped (its state machine panicked), as a thread's closed channel.
    pub(crate) fn push(&self, job: ApplyJob<SM>) -> bool {
        if self.poisoned.load(Ordering::Acquire) {
            return false;
        }
        self.jobs().push_back(job);
        if !self.scheduled.swap(true, Ordering::AcqRel) {
            if let Some(me) = self.me.upgrade() {
                self.pool.schedule(me);
            }
        }
        true
    }
}

impl<SM: StateMachine> Run for PooledWorker<SM> {
    fn run(&self) -> bool {
        let mut worker = self.worker.lock().unwrap_or_else(|e| e.into_inner());
        for _ in 0..BUDGET {
            let Some(job) = self.jobs().pop_front() else {
                worker.finish_round();
                self.scheduled.store(false, Ordering::Release);
                // A job pushed after the last pop and before the store saw the flag
                // set and did not schedule: take it now.
                return !self.jobs().is_empty() && !self.scheduled.swap(true, Ordering::AcqRel);
            };
            worker.handle(job);
        }
        worker.finish_round();
        true
    }

    fn poison(&self) {
        self.poisoned.store(true, Ordering::Release);
        // The jobs' callers learn the node stopped when their replies drop.
        self.jobs().clear();
    }
}
