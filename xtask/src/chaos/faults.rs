//! The faults: which, on whom, for how long, all chosen by the run's seeded RNG.

use std::fmt;
use std::time::{Duration, Instant};

use easyraft::NodeId;

use super::procs::Procs;
use super::rng::Rng;
use crate::relay::Relays;

/// A kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// SIGKILL a node (the leader or another), then restart it on the same data
    /// directory and port.
    Kill,
    /// SIGSTOP a node (a GC pause, a stalled VM), then SIGCONT it.
    Pause,
    /// Cut a minority (or the leader alone) off from the others, then heal.
    Partition,
}

impl Fault {
    /// Every kind.
    pub const ALL: [Fault; 3] = [Fault::Kill, Fault::Pause, Fault::Partition];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Pause => "pause",
            Fault::Partition => "partition",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Fault::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| format!("unknown fault {s:?} (kill, pause, partition)"))
    }
}

/// One fault that happened.
#[derive(Clone, Debug)]
pub struct FaultEvent {
    /// The kind.
    pub fault: Fault,
    /// When it started, since the run started.
    pub at: Duration,
    /// How long it lasted.
    pub held: Duration,
    /// What was done, in words.
    pub what: String,
}

/// Injects faults one at a time until `until`, and in any case until every kind in
/// `kinds` happened once; heals after each. Calls `log` with each line to print.
pub(crate) async fn inject(
    procs: &mut Procs,
    relays: &Relays,
    rng: &mut Rng,
    kinds: &[Fault],
    start: Instant,
    until: Instant,
    log: &mut dyn FnMut(&str),
) -> std::io::Result<Vec<FaultEvent>> {
    let ids: Vec<String> = procs.ports.keys().cloned().collect();
    let n = ids.len();
    let mut events = Vec::new();
    let mut round: Vec<Fault> = Vec::new();
    while (Instant::now() < until || events.len() < kinds.len()) && !kinds.is_empty() {
        if round.is_empty() {
            round = kinds.to_vec();
            rng.shuffle(&mut round);
        }
        let fault = round.remove(0);
        let leader = procs.leader();
        let target = match (&leader, rng.below(2)) {
            (Some(l), 0) => l.clone(),
            _ => rng.pick(&ids).cloned().unwrap_or_default(),
        };
        let role = |id: &str| {
            if leader.as_deref() == Some(id) {
                " (the leader)"
            } else {
                ""
            }
        };
        let hold = Duration::from_millis(rng.range(1000, 3000));
        let at = start.elapsed();
        let what = match fault {
            Fault::Kill => {
                procs.kill(&target);
                log(&format!(
                    "{:>6.1}s  kill -KILL {target}{}",
                    at.as_secs_f64(),
                    role(&target)
                ));
                tokio::time::sleep(hold).await;
                procs.spawn(&target)?;
                format!("SIGKILLed {target}{}, restarted it after {hold:.1?}", role(&target))
            }
            Fault::Pause => {
                procs.pause(&target)?;
                log(&format!(
                    "{:>6.1}s  kill -STOP {target}{}",
                    at.as_secs_f64(),
                    role(&target)
                ));
                tokio::time::sleep(hold).await;
                procs.resume(&target)?;
                format!("froze {target}{} for {hold:.1?}", role(&target))
            }
            Fault::Partition => {
                let mut side: Vec<String> = match (&leader, rng.below(2)) {
                    (Some(l), 0) => vec![l.clone()],
                    _ => {
                        let mut all = ids.clone();
                        rng.shuffle(&mut all);
                        all.truncate(1 + rng.below((n - 1) / 2));
                        all
                    }
                };
                side.sort();
                relays.cut(side.iter().map(NodeId::new));
                let desc = side
                    .iter()
                    .map(|s| format!("{s}{}", role(s)))
                    .collect::<Vec<_>>()
                    .join(", ");
                log(&format!(
                    "{:>6.1}s  partition: [{desc}] cut off from the others",
                    at.as_secs_f64()
                ));
                tokio::time::sleep(hold).await;
                relays.heal();
                format!("cut [{desc}] off for {hold:.1?}")
            }
        };
        log(&format!("{:>6.1}s  healed: {what}", start.elapsed().as_secs_f64()));
        events.push(FaultEvent {
            fault,
            at,
            held: hold,
            what,
        });
        tokio::time::sleep(Duration::from_millis(rng.range(1000, 2000))).await;
        for (id, status) in procs.exited() {
            log(&format!(
                "{:>6.1}s  {id} EXITED on its own ({status}): restarting it",
                start.elapsed().as_secs_f64()
            ));
            procs.kill(&id);
            procs.spawn(&id)?;
        }
    }
    Ok(events)
}
