//! The checker against hand-written histories and against proptest's.

use proptest::prelude::*;

use super::check;
use crate::history::{Call, Op, Outcome, Ret};

fn s(v: &str) -> Option<String> {
    (!v.is_empty()).then(|| v.to_string())
}

fn op(call: Call, invoke: u64, outcome: Outcome) -> Op {
    Op {
        client: 0,
        key: "k".into(),
        call,
        invoke,
        outcome,
        final_read: false,
    }
}

/// `put(v) -> previous` over `[a, b]` (`""` is absent).
fn put(v: &str, previous: &str, a: u64, b: u64) -> Op {
    let ret = Ret::Put { previous: s(previous) };
    op(Call::Put { value: v.into() }, a, Outcome::Ok { complete: b, ret })
}

fn get(v: &str, a: u64, b: u64) -> Op {
    op(
        Call::Get,
        a,
        Outcome::Ok {
            complete: b,
            ret: Ret::Get { value: s(v) },
        },
    )
}

fn cas(expected: &str, new: &str, ok: bool, previous: &str, a: u64, b: u64) -> Op {
    let call = Call::Cas {
        expected: s(expected),
        new: new.into(),
    };
    let ret = Ret::Cas {
        ok,
        previous: s(previous),
    };
    op(call, a, Outcome::Ok { complete: b, ret })
}

fn unknown(mut o: Op) -> Op {
    o.outcome = Outcome::Unknown;
    o
}

fn failed(mut o: Op) -> Op {
    o.outcome = Outcome::Fail;
    o
}

fn final_read(v: &str, a: u64) -> Op {
    let mut o = get(v, a, a + 5);
    o.final_read = true;
    o
}

fn passes(h: &[Op]) -> bool {
    check(h).passed()
}

#[test]
fn sequential_history_is_linearizable() {
    let h = [
        get("", 0, 1),
        put("a", "", 2, 3),
        get("a", 4, 5),
        cas("a", "b", true, "a", 6, 7),
        cas("a", "c", false, "b", 8, 9),
        put("d", "b", 10, 11),
        final_read("d", 20),
    ];
    assert!(passes(&h));
}

#[test]
fn concurrent_ops_may_take_effect_in_either_order() {
    // The two puts overlap: the reads may see them in the order b, a.
    let h = [put("a", "b", 0, 10), put("b", "", 1, 9), get("a", 11, 12)];
    assert!(passes(&h));
}

#[test]
fn stale_read_after_a_completed_write_is_rejected() {
    let h = [put("a", "", 0, 10), put("b", "a", 20, 30), get("a", 40, 50)];
    let v = check(&h);
    assert!(!v.passed());
    let f = &v.failures[0];
    assert_eq!(f.culprit, 2, "{}", f.describe(&h));
    assert!(!f.lost_write);
}

#[test]
fn read_of_a_value_never_written_is_rejected() {
    assert!(!passes(&[put("a", "", 0, 10), get("zzz", 20, 30)]));
}

#[test]
fn lost_acknowledged_write_is_reported_as_such() {
    let h = [put("a", "", 0, 10), put("b", "a", 20, 30), final_read("a", 100)];
    let v = check(&h);
    assert!(!v.passed());
    assert!(v.failures[0].lost_write, "{}", v.failures[0].describe(&h));
    assert!(v.failures[0].describe(&h).contains("LOST ACKNOWLEDGED WRITE"));
}

#[test]
fn put_with_a_wrong_previous_value_is_rejected() {
    assert!(!passes(&[put("a", "", 0, 10), put("b", "", 20, 30)]));
}

#[test]
fn two_cas_from_the_same_expectation_cannot_both_win() {
    let h = [
        put("a", "", 0, 1),
        cas("a", "b", true, "a", 10, 20),
        cas("a", "c", true, "a", 11, 21),
    ];
    assert!(!passes(&h));
    // One wins, the other sees the winner's value: fine.
    let h = [
        put("a", "", 0, 1),
        cas("a", "b", true, "a", 10, 20),
        cas("a", "c", false, "b", 11, 21),
    ];
    assert!(passes(&h));
}

#[test]
fn cas_that_fails_although_the_value_matched_is_rejected() {
    assert!(!passes(&[put("a", "", 0, 1), cas("a", "b", false, "a", 10, 20)]));
}

#[test]
fn unknown_write_that_took_effect_explains_a_read() {
    let h = [unknown(put("a", "", 0, 0)), get("a", 50, 60), final_read("a", 100)];
    assert!(passes(&h));
}

#[test]
fn unknown_write_that_did_not_take_effect_is_fine() {
    let h = [
        put("a", "", 0, 1),
        unknown(put("b", "", 5, 0)),
        get("a", 50, 60),
        final_read("a", 100),
    ];
    assert!(passes(&h));
}

#[test]
fn unknown_write_cannot_take_effect_before_it_was_invoked() {
    let h = [get("a", 0, 10), unknown(put("a", "", 100, 0))];
    assert!(!passes(&h));
}

#[test]
fn unknown_cas_may_be_applied_late() {
    let h = [
        put("a", "", 0, 1),
        unknown(cas("a", "b", true, "", 10, 0)),
        get("a", 20, 30),
        get("b", 40, 50),
        final_read("b", 100),
    ];
    assert!(passes(&h));
}

#[test]
fn unknown_write_observed_then_unobserved_is_rejected() {
    // Once a read saw b, the later read cannot go back to a: nothing wrote a again.
    let h = [
        put("a", "", 0, 1),
        unknown(put("b", "a", 10, 0)),
        get("b", 20, 30),
        get("a", 40, 50),
    ];
    assert!(!passes(&h));
}

#[test]
fn failed_ops_are_ignored() {
    let h = [put("a", "", 0, 1), failed(put("b", "", 5, 0)), get("a", 50, 60)];
    assert!(passes(&h));
    // ... so a failed write that did take effect is caught.
    let h = [put("a", "", 0, 1), failed(put("b", "", 5, 0)), get("b", 50, 60)];
    assert!(!passes(&h));
}

#[test]
fn keys_are_checked_independently() {
    let mut other = put("x", "", 0, 1);
    other.key = "other".into();
    let h = [put("a", "", 0, 1), other, get("a", 5, 6)];
    let v = check(&h);
    assert!(v.passed());
    assert_eq!(v.keys, 2);
}

#[test]
fn culprit_is_the_first_op_that_breaks_the_history() {
    let mut h = vec![put("a", "", 0, 1)];
    for i in 0..20u64 {
        h.push(get("a", 10 + 10 * i, 15 + 10 * i));
    }
    h.push(get("zzz", 300, 305));
    for i in 0..5u64 {
        h.push(get("a", 400 + 10 * i, 405 + 10 * i));
    }
    let v = check(&h);
    assert_eq!(v.failures.len(), 1);
    assert_eq!(v.failures[0].culprit, 21, "{}", v.failures[0].describe(&h));
}

/// One op of a sequential execution: 0 put, 1 get, 2 cas (expecting the current value
/// when `hit`, a stale one otherwise); `unknown` ops lose their answer and, when
/// `lost`, never take effect.
#[derive(Clone, Debug)]
struct Plan {
    key: u8,
    kind: u8,
    hit: bool,
    unknown: bool,
    lost: bool,
    before: u64,
    after: u64,
}

fn plans() -> impl Strategy<Value = Vec<Plan>> {
    prop::collection::vec(
        (
            0..3u8,
            0..3u8,
            any::<bool>(),
            0..10u8,
            any::<bool>(),
            0..40u64,
            0..40u64,
        )
            .prop_map(|(key, kind, hit, u, lost, before, after)| Plan {
                key,
                kind,
                hit,
                unknown: u == 0,
                lost,
                before,
                after,
            }),
        1..60,
    )
}

/// Runs the plans one after the other on registers, op i taking effect at 10 * i + 5,
/// its interval stretched by `before` and `after` around that point so ops overlap.
fn execute(plans: &[Plan]) -> Vec<Op> {
    let mut regs: [Option<String>; 3] = Default::default();
    let mut history = Vec::new();
    for (i, p) in plans.iter().enumerate() {
        let at = 10 * i as u64 + 50;
        let key = usize::from(p.key);
        let current = regs[key].clone();
        let value = format!("v{i}");
        let (call, ret) = match p.kind {
            0 => (
                Call::Put { value: value.clone() },
                Ret::Put {
                    previous: current.clone(),
                },
            ),
            1 => (Call::Get, Ret::Get { value: current.clone() }),
            _ => {
                let expected = if p.hit { current.clone() } else { Some("stale".into()) };
                let ok = expected == current;
                let call = Call::Cas {
                    expected,
                    new: value.clone(),
                };
                (
                    call,
                    Ret::Cas {
                        ok,
                        previous: current.clone(),
                    },
                )
            }
        };
        let takes_effect = !(p.unknown && p.lost);
        if takes_effect {
            match &call {
                Call::Put { value } => regs[key] = Some(value.clone()),
                Call::Cas { expected, new } if *expected == current => regs[key] = Some(new.clone()),
                _ => {}
            }
        }
        let outcome = if p.unknown {
            Outcome::Unknown
        } else {
            Outcome::Ok {
                complete: at + p.after,
                ret,
            }
        };
        history.push(Op {
            client: i,
            key: format!("k{key}"),
            call,
            invoke: at.saturating_sub(p.before),
            outcome,
            final_read: false,
        });
    }
    history
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn histories_of_a_sequential_execution_are_accepted(plans in plans()) {
        let h = execute(&plans);
        let v = check(&h);
        prop_assert!(v.passed(), "{:?}", v.failures.iter().map(|f| f.describe(&h)).collect::<Vec<_>>());
    }

    #[test]
    fn a_read_of_a_value_never_written_is_rejected(plans in plans(), pick in any::<prop::sample::Index>()) {
        let mut h = execute(&plans);
        let reads: Vec<usize> = (0..h.len())
            .filter(|&i| matches!(h[i].outcome, Outcome::Ok { ret: Ret::Get { .. }, .. }))
            .collect();
        prop_assume!(!reads.is_empty());
        let i = reads[pick.index(reads.len())];
        if let Outcome::Ok { ret, .. } = &mut h[i].outcome {
            *ret = Ret::Get { value: Some("never written".into()) };
        }
        prop_assert!(!check(&h).passed());
    }

    #[test]
    fn a_stale_read_after_a_later_completed_write_is_rejected(plans in plans(), key in 0..3u8) {
        let mut h = execute(&plans);
        let key = format!("k{key}");
        let end = h.iter().map(|o| match o.outcome {
            Outcome::Ok { complete, .. } => complete.max(o.invoke),
            _ => o.invoke,
        }).max().unwrap_or(0);
        // Whatever the key held, write a fresh value (its previous unknown), then
        // another over it, then read the first one: stale.
        let before = Op {
            client: 999,
            key: key.clone(),
            call: Call::Put { value: "fresh-1".into() },
            invoke: end + 10,
            outcome: Outcome::Unknown,
            final_read: false,
        };
        h.push(before.clone());
        h.push(Op {
            call: Call::Put { value: "fresh-2".into() },
            invoke: end + 30,
            outcome: Outcome::Ok { complete: end + 40, ret: Ret::Put { previous: Some("fresh-1".into()) } },
            ..before.clone()
        });
        prop_assert!(check(&h).passed());
        h.push(Op {
            call: Call::Get,
            invoke: end + 50,
            outcome: Outcome::Ok { complete: end + 60, ret: Ret::Get { value: Some("fresh-1".into()) } },
            ..before
        });
        prop_assert!(!check(&h).passed());
    }
}
