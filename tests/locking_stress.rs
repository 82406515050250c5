//! Many threads against one lock manager: random levels, names, modes,
//! priorities, timeouts and cancels, while another thread adds and removes
//! locks. Checks that no lock is ever held by an exclusive owner together
//! with anyone else, that a failed acquisition leaves nothing held, and that
//! everything finishes (no deadlock) with every lock free at the end.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use ganeti::locking::{Level, LockError, LockManager, Names, BGL};

const WORKERS: usize = 12;
const ROUNDS: usize = 250;
const CHURN_ROUNDS: usize = 150;
const DEADLINE: Duration = Duration::from_secs(120);

/// xorshift64*: deterministic per thread, no extra crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn level_names(level: Level) -> Vec<String> {
    match level {
        Level::Cluster => vec![BGL.to_string()],
        Level::Instance => (0..8).map(|i| format!("inst{i}")).collect(),
        Level::NodeGroup => (0..3).map(|i| format!("group{i}")).collect(),
        // dyn* come and go (churn thread).
        Level::Node => (0..10)
            .map(|i| format!("node{i}"))
            .chain((0..3).map(|i| format!("dyn{i}")))
            .collect(),
    }
}

/// Who holds what, kept by the test itself: -1 exclusive, n > 0 sharers.
struct Shadow(HashMap<(Level, String), AtomicI64>);

impl Shadow {
    fn new() -> Shadow {
        let mut map = HashMap::new();
        for level in Level::ALL {
            for name in level_names(level) {
                map.insert((level, name), AtomicI64::new(0));
            }
        }
        Shadow(map)
    }

    fn cell(&self, level: Level, name: &str) -> &AtomicI64 {
        &self.0[&(level, name.to_string())]
    }

    /// Marks a lock taken; false if that contradicts the other holders.
    fn take(&self, level: Level, name: &str, shared: bool) -> bool {
        let cell = self.cell(level, name);
        if shared {
            cell.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| {
                (v >= 0).then_some(v + 1)
            })
            .is_ok()
        } else {
            cell.compare_exchange(0, -1, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        }
    }

    fn give(&self, level: Level, name: &str, shared: bool) {
        let cell = self.cell(level, name);
        if shared {
            cell.fetch_sub(1, Ordering::SeqCst);
        } else {
            cell.store(0, Ordering::SeqCst);
        }
    }
}

/// How acquisitions ended: granted, timed out, cancelled, name gone.
#[derive(Default)]
struct Tally {
    granted: AtomicUsize,
    timeouts: AtomicUsize,
    canceled: AtomicUsize,
    gone: AtomicUsize,
}

fn worker(lm: &LockManager, shadow: &Shadow, violations: &AtomicUsize, tally: &Tally, id: usize) {
    let owner = format!("Jq{id}");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (id as u64 + 1));
    let never = || false;
    for _ in 0..ROUNDS {
        let mut held: Vec<(Level, String, bool)> = Vec::new();
        let bgl_shared = !rng.chance(3);
        lm.acquire(
            &owner,
            Level::Cluster,
            &Names::List(vec![BGL.into()]),
            bgl_shared,
            None,
            0,
            &never,
        )
        .expect("a blocking BGL acquire");
        if !shadow.take(Level::Cluster, BGL, bgl_shared) {
            violations.fetch_add(1, Ordering::SeqCst);
        }
        held.push((Level::Cluster, BGL.to_string(), bgl_shared));

        for level in [Level::Instance, Level::NodeGroup, Level::Node] {
            if rng.chance(40) {
                continue;
            }
            let all = level_names(level);
            let names = if rng.chance(10) {
                Names::All
            } else {
                let count = 1 + rng.below(3) as usize;
                Names::List(
                    (0..count)
                        .map(|_| all[rng.below(all.len() as u64) as usize].clone())
                        .collect(),
                )
            };
            let shared = rng.chance(60);
            let priority = [-10, 0, 10][rng.below(3) as usize];
            let timeout = if rng.chance(50) {
                None
            } else {
                Some(Duration::from_micros(rng.below(5000)))
            };
            let cancel_now = rng.chance(5);
            let cancel = move || cancel_now;
            match lm.acquire(&owner, level, &names, shared, timeout, priority, &cancel) {
                Ok(got) => {
                    tally.granted.fetch_add(1, Ordering::SeqCst);
                    for name in got {
                        if !shadow.take(level, &name, shared) {
                            violations.fetch_add(1, Ordering::SeqCst);
                        }
                        held.push((level, name, shared));
                    }
                }
                Err(e @ LockError::Timeout)
                | Err(e @ LockError::Canceled)
                | Err(e @ LockError::Unknown { .. })
                | Err(e @ LockError::Deleted { .. }) => {
                    match e {
                        LockError::Timeout => &tally.timeouts,
                        LockError::Canceled => &tally.canceled,
                        _ => &tally.gone,
                    }
                    .fetch_add(1, Ordering::SeqCst);
                    // All-or-nothing: nothing at this level, set lock included.
                    assert!(
                        !lm.is_owned(&owner, level),
                        "{owner} kept locks at {level:?}"
                    );
                }
                Err(other) => panic!("{owner}: unexpected {other:?}"),
            }
            let mut expected: Vec<String> = held
                .iter()
                .filter(|(l, _, _)| *l == level)
                .map(|(_, n, _)| n.clone())
                .collect();
            expected.sort();
            assert_eq!(lm.owned(&owner, level), expected);
        }
        for _ in 0..rng.below(4) {
            thread::yield_now();
        }
        // Forget in the shadow before the locks are really given back.
        for (level, name, shared) in held.iter().rev() {
            shadow.give(*level, name, *shared);
        }
        lm.release_all(&owner);
        for level in Level::ALL {
            assert!(!lm.is_owned(&owner, level));
        }
    }
}

fn churn(lm: &LockManager) {
    let owner = "churn";
    let never = || false;
    let bgl = Names::List(vec![BGL.into()]);
    let mut rng = Rng(42);
    for _ in 0..CHURN_ROUNDS {
        let name = format!("dyn{}", rng.below(3));
        lm.acquire(owner, Level::Cluster, &bgl, true, None, 0, &never)
            .unwrap();
        if rng.chance(50) {
            match lm.add(
                owner,
                Level::Node,
                std::slice::from_ref(&name),
                false,
                false,
            ) {
                Ok(()) | Err(LockError::Exists { .. }) => {}
                Err(other) => panic!("add: {other:?}"),
            }
        } else {
            // Waits for the lock exclusively, then deletes it.
            lm.remove(owner, Level::Node, &[name]).unwrap();
        }
        lm.release_all(owner);
        thread::yield_now();
    }
}

#[test]
fn many_threads_never_share_an_exclusive_lock_nor_deadlock() {
    let lm = Arc::new(LockManager::new(
        level_names(Level::Instance),
        level_names(Level::NodeGroup),
        level_names(Level::Node),
    ));
    let shadow = Arc::new(Shadow::new());
    let violations = Arc::new(AtomicUsize::new(0));
    let tally = Arc::new(Tally::default());
    let (tx, rx) = mpsc::channel();
    let mut handles = Vec::new();
    for id in 1..=WORKERS {
        let (lm, shadow, violations, tally, tx) = (
            Arc::clone(&lm),
            Arc::clone(&shadow),
            Arc::clone(&violations),
            Arc::clone(&tally),
            tx.clone(),
        );
        handles.push(thread::spawn(move || {
            worker(&lm, &shadow, &violations, &tally, id);
            tx.send(id).unwrap();
        }));
    }
    {
        let (lm, tx) = (Arc::clone(&lm), tx.clone());
        handles.push(thread::spawn(move || {
            churn(&lm);
            tx.send(0).unwrap();
        }));
    }
    drop(tx);

    let start = Instant::now();
    for _ in 0..=WORKERS {
        let left = DEADLINE.saturating_sub(start.elapsed());
        if rx.recv_timeout(left).is_err() {
            // A thread panicked (join below shows it) or everyone is stuck.
            let stuck: Vec<_> = lm
                .info()
                .into_iter()
                .filter(|l| !l.pending.is_empty())
                .collect();
            assert!(
                handles.iter().any(|h| h.is_finished()),
                "deadlock: {stuck:#?}"
            );
            break;
        }
    }
    for h in handles {
        h.join().expect("a worker failed");
    }
    assert_eq!(violations.load(Ordering::SeqCst), 0);
    let count = |c: &AtomicUsize| c.load(Ordering::SeqCst);
    println!(
        "granted {}, timed out {}, cancelled {}, name gone {}",
        count(&tally.granted),
        count(&tally.timeouts),
        count(&tally.canceled),
        count(&tally.gone)
    );
    // The contended paths were taken, not only free locks.
    assert!(count(&tally.granted) > 0);
    assert!(count(&tally.timeouts) > 0);
    assert!(count(&tally.canceled) > 0);
    for lock in lm.info() {
        assert_eq!(lock.mode, None, "{lock:?}");
        assert!(lock.pending.is_empty(), "{lock:?}");
    }
}
