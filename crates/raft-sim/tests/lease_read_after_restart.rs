//! Regression test for a stale lease read found with the simulator: a follower that
//! restarts forgets that it heard from the leader, so it voted at once, while a
//! leader serving lease reads counts on every follower that acknowledged it not
//! voting for anyone else within an election timeout. A new leader was elected and
//! committed a write inside the old leader's lease, and the old leader then served a
//! read that missed it. Scripted on the simulator, with its checker watching.

use raft_core::Config;
use raft_sim::{CrashPoint, NetFaults, Property, SimCluster};

fn config() -> Config {
    let mut c = Config::new("unset");
    c.election_tick = 10;
    c.heartbeat_tick = 1;
    c.pre_vote = true;
    c.check_quorum = true;
    c.read_lease_ticks = Some(8);
    c
}

#[test]
fn restarted_follower_cannot_elect_a_new_leader_inside_the_old_leaders_lease() {
    let mut c = SimCluster::new(3, 3, 7, |_| config(), NetFaults::none(), 500).unwrap();
    let leader = loop {
        c.tick().unwrap();
        if let Some(l) = c.leader() {
            break l;
        }
        assert!(c.now() < 200, "no leader");
    };
    let (bridge, other) = match leader {
        0 => (1, 2),
        1 => (2, 0),
        _ => (0, 1),
    };
    let outcome = (|| {
        for _ in 0..20 {
            c.tick()?;
        }
        // The leader and `other` cannot talk; `bridge` reaches both.
        c.network().cut_both_ways(leader, other);
        c.tick()?;
        // The bridge restarts at once: it no longer knows of the leader, and the
        // leader's next heartbeat to it is late (lost here).
        c.network().cut_one_way(leader, bridge);
        c.crash(bridge, CrashPoint::Now, 0);
        c.tick()?;
        c.campaign(other)?;
        // `other` wins with the bridge's vote and commits in this tick.
        c.tick()?;
        c.propose(other, &[1])?.ok();
        c.tick()?;
        // The old leader's lease has not run out: it serves a read alone.
        for read in 0..3 {
            c.read(leader, read)?;
        }
        c.tick()
    })();
    let trace = c.trace().lines().collect::<Vec<_>>().join("\n");
    if let Err(v) = outcome {
        assert_ne!(v.property, Property::LinearizableReads, "{v}\n{trace}");
        panic!("{v}\n{trace}");
    }
    // The restarted bridge refused to vote while the lease could still be held, so
    // the old leader kept its leadership and served the reads.
    assert_eq!(c.leader(), Some(leader), "{trace}");
    assert_eq!(c.checker().stats().reads_checked, 3, "{trace}");
}
