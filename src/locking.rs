//! The lock manager of ganeti-masterd (2.5.2 `locking.GanetiLockManager`).
//!
//! Four levels, acquired in this order: `cluster` (the single Big Ganeti
//! Lock, `BGL`), `instance`, `nodegroup`, `node`. Each level is a set of
//! named shared/exclusive locks plus a set-level lock (`[lockset]`) that is
//! taken when acquiring the whole level ([`Names::All`]) and when adding
//! members, so no member appears while someone holds "all of them".
//!
//! Supported, as 2.5.2:
//! * every lock has a wait queue ordered by priority (lower number first),
//!   FIFO within a priority; shared requests of the same priority that are
//!   still waiting form one group and are granted together (a new shared
//!   request joins that group, so it may pass exclusive requests of its own
//!   priority that came after the group was formed, as in 2.5.2);
//! * a new request never jumps the queue: it is granted at once only when
//!   nobody waits ahead of it;
//! * the names of one call are acquired in sorted order, all-or-nothing: on
//!   a timeout, a cancel or an error nothing stays held at that level by the
//!   call; the timeout covers the whole call;
//! * order rules: the BGL before anything else, never a level at or below
//!   one already held. Breaking them is a programming error, reported as
//!   [`LockError::Order`] (2.5.2 asserts), never a panic. Together with the
//!   sorted order within a level this makes the acquisitions deadlock-free;
//! * adding names (fails for an existing name, as 2.5.2's "duplicate add"),
//!   removing names (waiters of a removed lock fail with 2.5.2's
//!   "Non-existing lock ... (it may have been removed)"; a whole-level
//!   acquisition skips it), releasing, [`LockManager::owned`] and
//!   [`LockManager::info`] (name, mode, owners, pending: `gnt-debug locks`).
//!
//! Owners are strings (a job worker's thread name): one owner must not use
//! the manager from two threads at once.
//!
//! Differences from 2.5.2, on purpose:
//! * waiting is a `Condvar` wait that wakes at least every [`CANCEL_POLL`] to
//!   ask the caller's cancel predicate, so a job cancelled while blocked on a
//!   lock stops waiting (2.5.2 only notices at the end of a timed attempt);
//! * when a waiter gives up (timeout, cancel), requests behind it that can
//!   now be granted are granted at once (2.5.2 left them waiting for the
//!   next release);
//! * lock names in [`LockManager::info`] are sorted with a simplified
//!   "nice sort" (digit runs compared as numbers);
//! * `downgrade` (unused by 2.5.2's logical units) is not provided.
#![forbid(unsafe_code)]

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::errors::GanetiError;

/// The name of the single lock at [`Level::Cluster`].
pub const BGL: &str = "BGL";

/// The longest a waiter sleeps before asking its cancel predicate again.
pub const CANCEL_POLL: Duration = Duration::from_millis(100);

/// The priority of internal acquisitions (add, remove): 2.5.2's
/// `_DEFAULT_PRIORITY`.
pub const DEFAULT_PRIORITY: i32 = 0;

/// The name of the set-level lock of each level, as `gnt-debug locks` shows it.
const SET_LOCK_NAME: &str = "[lockset]";

/// Lock levels, in acquisition order (2.5.2 `LEVEL_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Cluster = 0,
    Instance = 1,
    NodeGroup = 2,
    Node = 3,
}

impl Level {
    /// All levels, in acquisition order.
    pub const ALL: [Level; 4] = [
        Level::Cluster,
        Level::Instance,
        Level::NodeGroup,
        Level::Node,
    ];

    /// 2.5.2's `LEVEL_NAMES`.
    pub fn name(self) -> &'static str {
        match self {
            Level::Cluster => "cluster",
            Level::Instance => "instance",
            Level::NodeGroup => "nodegroup",
            Level::Node => "node",
        }
    }

    /// The name of the level's lock set, the prefix of its lock names.
    pub fn set_name(self) -> &'static str {
        match self {
            Level::Cluster => "BGL",
            Level::Instance => "instances",
            Level::NodeGroup => "nodegroups",
            Level::Node => "nodes",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The levels strictly after this one.
    fn above(self) -> impl Iterator<Item = Level> {
        Level::ALL.into_iter().filter(move |l| *l > self)
    }
}

/// What to acquire at one level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Names {
    /// Every member, plus the set-level lock (2.5.2 `ALL_SET`).
    All,
    List(Vec<String>),
}

/// Why an acquisition, an addition or a removal failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockError {
    /// The timeout passed before every lock was granted; nothing is held.
    Timeout,
    /// The cancel predicate said so while waiting; nothing is held.
    Canceled,
    /// A requested name is not a member of the level.
    Unknown { level: Level, name: String },
    /// The lock was removed while this request waited for it.
    Deleted { level: Level, name: String },
    /// [`LockManager::add`] of names that already exist.
    Exists { level: Level, names: Vec<String> },
    /// The order rules were broken: a programming error of the caller.
    Order(String),
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Timeout => f.write_str("Timeout while acquiring locks"),
            LockError::Canceled => f.write_str("Cancelled while waiting for locks"),
            LockError::Unknown { level, name } | LockError::Deleted { level, name } => write!(
                f,
                "Non-existing lock {name} in set {} (it may have been removed)",
                level.set_name()
            ),
            LockError::Exists { level, names } => {
                // Python's repr of a set of unicode names.
                let items: Vec<String> = names.iter().map(|n| format!("u'{n}'")).collect();
                write!(
                    f,
                    "duplicate add(set([{}])) on lockset {}",
                    items.join(", "),
                    level.set_name()
                )
            }
            LockError::Order(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for LockError {}

impl LockError {
    /// The error a job records when this one ends an opcode: 2.5.2's
    /// `errors.LockError`, or `ProgrammerError` for a broken order rule.
    /// (The processor treats [`LockError::Timeout`] and
    /// [`LockError::Canceled`] itself: retry, or cancel the job.)
    pub fn to_ganeti(&self) -> GanetiError {
        match self {
            LockError::Order(_) => GanetiError::msg("ProgrammerError", self.to_string()),
            _ => GanetiError::msg("LockError", self.to_string()),
        }
    }
}

/// One waiting acquisition, as [`LockManager::info`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAcquire {
    /// `"shared"` or `"exclusive"`.
    pub mode: &'static str,
    /// The waiting owners, nice-sorted.
    pub owners: Vec<String>,
}

/// One lock, as [`LockManager::info`] lists it (2.5.2 `GetLockInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockInfo {
    /// `<set>/<member>`, e.g. `BGL/BGL`, `nodes/node1.example.com`,
    /// `instances/[lockset]`.
    pub name: String,
    /// `Some("exclusive")`, `Some("shared")`, or `None` when free.
    pub mode: Option<&'static str>,
    /// The holders, nice-sorted.
    pub owners: Vec<String>,
    /// The waiting groups in the order they will be served.
    pub pending: Vec<PendingAcquire>,
}

impl LockInfo {
    /// The row 2.5.2's lock query builds for fields `name, mode, owner,
    /// pending`: owners `null` when free, pending `[[mode, [owners]], ...]`.
    pub fn to_json(&self) -> Value {
        let owners = if self.owners.is_empty() {
            Value::Null
        } else {
            json!(self.owners)
        };
        let pending: Vec<Value> = self
            .pending
            .iter()
            .map(|p| json!([p.mode, p.owners]))
            .collect();
        json!([self.name, self.mode, owners, pending])
    }
}

type ReqId = u64;

/// Requests waiting together: one exclusive request, or the shared
/// requests of one priority that arrived while the lock was busy.
#[derive(Debug)]
struct Group {
    priority: i32,
    shared: bool,
    waiters: Vec<(ReqId, String)>,
    cv: Arc<Condvar>,
}

/// One shared/exclusive lock. Grants are handed over by whoever frees the
/// lock ([`Lock::dispatch`]), so the state is always the truth and a waiter
/// only has to look up its outcome.
#[derive(Debug, Default)]
struct Lock {
    exclusive: Option<String>,
    shared: BTreeSet<String>,
    queue: Vec<Group>,
}

impl Lock {
    /// `Some(true)` if `owner` holds it shared, `Some(false)` exclusive.
    fn held_by(&self, owner: &str) -> Option<bool> {
        if self.exclusive.as_deref() == Some(owner) {
            Some(false)
        } else if self.shared.contains(owner) {
            Some(true)
        } else {
            None
        }
    }

    fn compatible(&self, shared: bool) -> bool {
        self.exclusive.is_none() && (shared || self.shared.is_empty())
    }

    fn grant(&mut self, owner: String, shared: bool) {
        if shared {
            self.shared.insert(owner);
        } else {
            self.exclusive = Some(owner);
        }
    }

    fn release(&mut self, owner: &str) {
        if self.exclusive.as_deref() == Some(owner) {
            self.exclusive = None;
        } else {
            self.shared.remove(owner);
        }
    }

    /// Queues a request; a shared one joins the waiting shared group of its
    /// priority. Returns the condition variable to wait on.
    fn enqueue(&mut self, req: ReqId, owner: &str, shared: bool, priority: i32) -> Arc<Condvar> {
        if shared {
            if let Some(group) = self
                .queue
                .iter_mut()
                .find(|g| g.shared && g.priority == priority)
            {
                group.waiters.push((req, owner.to_string()));
                return Arc::clone(&group.cv);
            }
        }
        let cv = Arc::new(Condvar::new());
        let pos = self
            .queue
            .iter()
            .position(|g| g.priority > priority)
            .unwrap_or(self.queue.len());
        self.queue.insert(
            pos,
            Group {
                priority,
                shared,
                waiters: vec![(req, owner.to_string())],
                cv: Arc::clone(&cv),
            },
        );
        cv
    }

    /// Takes a request out of the queue; false if it is not there.
    fn withdraw(&mut self, req: ReqId) -> bool {
        for i in 0..self.queue.len() {
            let group = &mut self.queue[i];
            if let Some(pos) = group.waiters.iter().position(|(r, _)| *r == req) {
                group.waiters.remove(pos);
                if group.waiters.is_empty() {
                    self.queue.remove(i);
                }
                return true;
            }
        }
        false
    }

    /// Grants the head of the queue as long as it is compatible with the
    /// holders, and wakes the granted waiters.
    fn dispatch(&mut self, outcomes: &mut HashMap<ReqId, Outcome>) {
        while let Some(head) = self.queue.first() {
            if !self.compatible(head.shared) {
                break;
            }
            let group = self.queue.remove(0);
            for (req, owner) in group.waiters {
                self.grant(owner, group.shared);
                outcomes.insert(req, Outcome::Granted);
            }
            group.cv.notify_all();
        }
    }

    /// Fails every waiter: the lock is being deleted.
    fn fail_waiters(&mut self, outcomes: &mut HashMap<ReqId, Outcome>) {
        for group in self.queue.drain(..) {
            for (req, _) in group.waiters {
                outcomes.insert(req, Outcome::Deleted);
            }
            group.cv.notify_all();
        }
    }

    fn info(&self, name: String) -> LockInfo {
        let (mode, mut owners) = match &self.exclusive {
            Some(owner) => (Some("exclusive"), vec![owner.clone()]),
            None if !self.shared.is_empty() => {
                (Some("shared"), self.shared.iter().cloned().collect())
            }
            None => (None, Vec::new()),
        };
        owners.sort_by(|a, b| nice_cmp(a, b));
        let pending = self
            .queue
            .iter()
            .map(|g| {
                let mut owners: Vec<String> = g.waiters.iter().map(|(_, o)| o.clone()).collect();
                owners.sort_by(|a, b| nice_cmp(a, b));
                PendingAcquire {
                    mode: if g.shared { "shared" } else { "exclusive" },
                    owners,
                }
            })
            .collect();
        LockInfo {
            name,
            mode,
            owners,
            pending,
        }
    }
}

/// What happened to a waiting request while its owner slept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Granted,
    Deleted,
}

/// Which lock of a level.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Set,
    Member(String),
}

#[derive(Debug, Default)]
struct LevelSet {
    set_lock: Lock,
    members: BTreeMap<String, Lock>,
}

impl LevelSet {
    fn get_mut(&mut self, target: &Target) -> Option<&mut Lock> {
        match target {
            Target::Set => Some(&mut self.set_lock),
            Target::Member(name) => self.members.get_mut(name),
        }
    }

    fn owns_any(&self, owner: &str) -> bool {
        self.set_lock.held_by(owner).is_some()
            || self.members.values().any(|l| l.held_by(owner).is_some())
    }

    fn owned(&self, owner: &str) -> Vec<String> {
        self.members
            .iter()
            .filter(|(_, l)| l.held_by(owner).is_some())
            .map(|(n, _)| n.clone())
            .collect()
    }
}

#[derive(Debug, Default)]
struct Inner {
    levels: [LevelSet; 4],
    outcomes: HashMap<ReqId, Outcome>,
    next_req: ReqId,
}

impl Inner {
    fn level(&self, level: Level) -> &LevelSet {
        &self.levels[level.index()]
    }

    fn owns_bgl(&self, owner: &str) -> bool {
        self.level(Level::Cluster)
            .members
            .get(BGL)
            .is_some_and(|l| l.held_by(owner).is_some())
    }

    fn owns_above(&self, owner: &str, level: Level) -> bool {
        level.above().any(|l| self.level(l).owns_any(owner))
    }

    /// Releases one lock held by `owner` and hands it on.
    fn release_one(&mut self, owner: &str, level: Level, target: &Target) {
        let Inner {
            levels, outcomes, ..
        } = self;
        if let Some(lock) = levels[level.index()].get_mut(target) {
            lock.release(owner);
            lock.dispatch(outcomes);
        }
    }

    /// Releases everything `owner` holds at `level`, set-level lock first.
    fn release_level(&mut self, owner: &str, level: Level) {
        if self.level(level).set_lock.held_by(owner).is_some() {
            self.release_one(owner, level, &Target::Set);
        }
        for name in self.level(level).owned(owner) {
            self.release_one(owner, level, &Target::Member(name));
        }
    }

    /// Deletes a member lock and fails its waiters.
    fn delete(&mut self, level: Level, name: &str) {
        let Inner {
            levels, outcomes, ..
        } = self;
        if let Some(mut lock) = levels[level.index()].members.remove(name) {
            lock.fail_waiters(outcomes);
        }
    }
}

/// Why one wait ended without the lock.
#[derive(Debug)]
enum WaitError {
    Timeout,
    Canceled,
    /// Not a member (any more).
    Missing,
    Order(String),
}

/// The lock manager; `Send + Sync`, shared through an `Arc`.
#[derive(Debug, Default)]
pub struct LockManager {
    inner: Mutex<Inner>,
}

fn never() -> bool {
    false
}

impl LockManager {
    /// A manager whose levels hold the given names (2.5.2 populates them
    /// from the configuration at start-up); the cluster level holds the BGL.
    pub fn new(instances: Vec<String>, groups: Vec<String>, nodes: Vec<String>) -> LockManager {
        let mut inner = Inner::default();
        let fill = |names: Vec<String>| -> BTreeMap<String, Lock> {
            names.into_iter().map(|n| (n, Lock::default())).collect()
        };
        inner.levels[Level::Cluster.index()].members = fill(vec![BGL.to_string()]);
        inner.levels[Level::Instance.index()].members = fill(instances);
        inner.levels[Level::NodeGroup.index()].members = fill(groups);
        inner.levels[Level::Node.index()].members = fill(nodes);
        LockManager {
            inner: Mutex::new(inner),
        }
    }

    fn lock_inner(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics while holding the mutex (the cancel predicate is
        // called without it), so a poisoned state is still consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Acquires `names` at `level` for `owner`, in sorted order,
    /// all-or-nothing, shared or exclusive, waiting in priority order (lower
    /// number first) for at most `timeout` in total (`None`: as long as it
    /// takes); `cancel` is asked at least every [`CANCEL_POLL`] while
    /// waiting. Returns the names acquired (sorted; for [`Names::All`] the
    /// members present once the set-level lock was held).
    #[allow(clippy::too_many_arguments)]
    pub fn acquire(
        &self,
        owner: &str,
        level: Level,
        names: &Names,
        shared: bool,
        timeout: Option<Duration>,
        priority: i32,
        cancel: &dyn Fn() -> bool,
    ) -> Result<Vec<String>, LockError> {
        // An overflowing deadline is as good as none.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut g = self.lock_inner();

        let touches_bgl = level == Level::Cluster
            && match names {
                Names::All => true,
                Names::List(list) => list.iter().any(|n| n == BGL),
            };
        if !touches_bgl && !g.owns_bgl(owner) {
            return Err(LockError::Order(
                "You must own the Big Ganeti Lock before acquiring any other".into(),
            ));
        }
        if g.owns_above(owner, level) {
            return Err(LockError::Order(
                "Cannot acquire locks at a level while owning some at a greater one".into(),
            ));
        }
        if g.level(level).owns_any(owner) {
            return Err(LockError::Order(format!(
                "Cannot acquire locks in the same set twice (lockset {})",
                level.set_name()
            )));
        }

        let want_all = *names == Names::All;
        let list: Vec<String> = match names {
            Names::All => {
                let (g2, r) = self.wait_for(
                    g,
                    owner,
                    level,
                    &Target::Set,
                    shared,
                    priority,
                    deadline,
                    cancel,
                );
                g = g2;
                r.map_err(|e| wait_to_lock_error(e, level, SET_LOCK_NAME))?;
                g.level(level).members.keys().cloned().collect()
            }
            Names::List(list) => {
                let mut list = list.clone();
                list.sort();
                list.dedup();
                if let Some(missing) = list
                    .iter()
                    .find(|n| !g.level(level).members.contains_key(*n))
                {
                    return Err(LockError::Unknown {
                        level,
                        name: missing.clone(),
                    });
                }
                list
            }
        };

        let mut acquired = Vec::with_capacity(list.len());
        for name in list {
            let target = Target::Member(name.clone());
            let (g2, r) =
                self.wait_for(g, owner, level, &target, shared, priority, deadline, cancel);
            g = g2;
            match r {
                Ok(()) => acquired.push(name),
                Err(WaitError::Missing) if want_all => continue,
                Err(e) => {
                    for done in acquired {
                        g.release_one(owner, level, &Target::Member(done));
                    }
                    if want_all {
                        g.release_one(owner, level, &Target::Set);
                    }
                    return Err(match e {
                        WaitError::Missing => LockError::Deleted { level, name },
                        other => wait_to_lock_error(other, level, &name),
                    });
                }
            }
        }
        Ok(acquired)
    }

    /// Waits until `owner` holds one lock. The mutex is released while
    /// waiting and while `cancel` runs; the guard is handed back.
    #[allow(clippy::too_many_arguments)]
    fn wait_for<'a>(
        &'a self,
        mut g: MutexGuard<'a, Inner>,
        owner: &str,
        level: Level,
        target: &Target,
        shared: bool,
        priority: i32,
        deadline: Option<Instant>,
        cancel: &dyn Fn() -> bool,
    ) -> (MutexGuard<'a, Inner>, Result<(), WaitError>) {
        let req = g.next_req;
        g.next_req += 1;
        let cv = {
            let Inner {
                levels, outcomes, ..
            } = &mut *g;
            let Some(lock) = levels[level.index()].get_mut(target) else {
                return (g, Err(WaitError::Missing));
            };
            if lock.held_by(owner).is_some() {
                let name = match target {
                    Target::Set => SET_LOCK_NAME,
                    Target::Member(n) => n.as_str(),
                };
                return (
                    g,
                    Err(WaitError::Order(format!(
                        "double acquire() on a non-recursive lock {}/{name}",
                        level.set_name()
                    ))),
                );
            }
            if lock.queue.is_empty() && lock.compatible(shared) {
                lock.grant(owner.to_string(), shared);
                return (g, Ok(()));
            }
            let cv = lock.enqueue(req, owner, shared, priority);
            // A request of a better priority may be grantable at once.
            lock.dispatch(outcomes);
            cv
        };

        let mut next_poll = Instant::now();
        loop {
            match g.outcomes.remove(&req) {
                Some(Outcome::Granted) => return (g, Ok(())),
                Some(Outcome::Deleted) => return (g, Err(WaitError::Missing)),
                None => {}
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                self.withdraw(&mut g, level, target, req);
                return (g, Err(WaitError::Timeout));
            }
            if now >= next_poll {
                drop(g);
                let canceled = cancel();
                g = self.lock_inner();
                next_poll = Instant::now() + CANCEL_POLL;
                if canceled && !g.outcomes.contains_key(&req) {
                    self.withdraw(&mut g, level, target, req);
                    return (g, Err(WaitError::Canceled));
                }
                // Granted meanwhile (a grant wins over a late cancel), or not.
                continue;
            }
            let mut wait = next_poll - now;
            if let Some(d) = deadline {
                wait = wait.min(d - now);
            }
            g = cv
                .wait_timeout(g, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Takes a request that gave up out of its queue and lets the requests
    /// behind it through if they can be granted now.
    fn withdraw(&self, g: &mut Inner, level: Level, target: &Target, req: ReqId) {
        let Inner {
            levels, outcomes, ..
        } = g;
        if let Some(lock) = levels[level.index()].get_mut(target) {
            if lock.withdraw(req) {
                lock.dispatch(outcomes);
            }
        }
    }

    /// Releases `names` (all held at `level` when `None`) and, if held, the
    /// level's set-level lock. Releasing names not held, or the BGL while
    /// holding other levels, is an [`LockError::Order`] error and changes
    /// nothing.
    pub fn release(
        &self,
        owner: &str,
        level: Level,
        names: Option<&[String]>,
    ) -> Result<(), LockError> {
        let mut g = self.lock_inner();
        let touches_bgl =
            level == Level::Cluster && names.map_or(true, |list| list.iter().any(|n| n == BGL));
        if touches_bgl && g.owns_above(owner, Level::Cluster) {
            return Err(LockError::Order(
                "Cannot release the Big Ganeti Lock while holding something at upper levels".into(),
            ));
        }
        match names {
            None => g.release_level(owner, level),
            Some(list) => {
                let owned = g.level(level).owned(owner);
                let unheld: Vec<&String> = list.iter().filter(|n| !owned.contains(n)).collect();
                if !unheld.is_empty() {
                    return Err(LockError::Order(format!(
                        "release() on unheld resources {unheld:?} (set {})",
                        level.set_name()
                    )));
                }
                if g.level(level).set_lock.held_by(owner).is_some() {
                    g.release_one(owner, level, &Target::Set);
                }
                for name in list {
                    g.release_one(owner, level, &Target::Member(name.clone()));
                }
            }
        }
        Ok(())
    }

    /// Releases everything `owner` holds, the highest level first.
    pub fn release_all(&self, owner: &str) {
        let mut g = self.lock_inner();
        for level in Level::ALL.into_iter().rev() {
            g.release_level(owner, level);
        }
    }

    /// Adds `names` to a modifiable level (not `cluster`), acquired by
    /// `owner` in the given mode when `acquired` (the processor's
    /// `add_locks`), free otherwise (node add). Needs the BGL, nothing held
    /// above `level`, and at `level` either nothing or the set-level lock
    /// exclusively; waits for the set-level lock as long as it takes. An
    /// existing name fails the whole call ([`LockError::Exists`]), adding
    /// nothing.
    pub fn add(
        &self,
        owner: &str,
        level: Level,
        names: &[String],
        acquired: bool,
        shared: bool,
    ) -> Result<(), LockError> {
        let mut g = self.lock_inner();
        check_modifiable(&g, owner, level)?;
        if g.owns_above(owner, level) {
            return Err(LockError::Order(
                "Cannot add locks at a level while owning some at a greater one".into(),
            ));
        }
        let set_mode = g.level(level).set_lock.held_by(owner);
        if g.level(level).owns_any(owner) && set_mode != Some(false) {
            return Err(LockError::Order(format!(
                "Cannot add locks if the set {} is only partially owned, or shared",
                level.set_name()
            )));
        }
        let took_set = set_mode.is_none();
        if took_set {
            let (g2, r) = self.wait_for(
                g,
                owner,
                level,
                &Target::Set,
                false,
                DEFAULT_PRIORITY,
                None,
                &never,
            );
            g = g2;
            r.map_err(|e| wait_to_lock_error(e, level, SET_LOCK_NAME))?;
        }

        let mut unique: Vec<String> = names.to_vec();
        unique.sort();
        unique.dedup();
        let existing: Vec<String> = unique
            .iter()
            .filter(|n| g.level(level).members.contains_key(*n))
            .cloned()
            .collect();
        let result = if existing.is_empty() {
            for name in unique {
                let mut lock = Lock::default();
                if acquired {
                    lock.grant(owner.to_string(), shared);
                }
                g.levels[level.index()].members.insert(name, lock);
            }
            Ok(())
        } else {
            Err(LockError::Exists {
                level,
                names: existing,
            })
        };
        if took_set {
            g.release_one(owner, level, &Target::Set);
        }
        result
    }

    /// Removes `names` from a modifiable level and returns the names removed
    /// (a name already gone is skipped). Either `owner` holds all of them
    /// exclusively, or holds nothing at `level` and above and then waits for
    /// each one exclusively before removing it. Whoever waits for a removed
    /// lock fails with [`LockError::Deleted`].
    pub fn remove(
        &self,
        owner: &str,
        level: Level,
        names: &[String],
    ) -> Result<Vec<String>, LockError> {
        let mut g = self.lock_inner();
        check_modifiable(&g, owner, level)?;
        let owns_level = g.level(level).owns_any(owner);
        if !owns_level && g.owns_above(owner, level) {
            return Err(LockError::Order(
                "Cannot remove locks at a level while not owning it or owning some at a greater \
                 one"
                .into(),
            ));
        }
        if owns_level {
            let owned = g.level(level).owned(owner);
            if names.iter().any(|n| !owned.contains(n)) {
                return Err(LockError::Order(format!(
                    "remove() on acquired lockset {} while not owning all elements",
                    level.set_name()
                )));
            }
            if names.iter().any(|n| {
                g.level(level)
                    .members
                    .get(n)
                    .is_some_and(|l| l.held_by(owner) == Some(true))
            }) {
                return Err(LockError::Order(
                    "Cannot delete() a lock while sharing it".into(),
                ));
            }
        }

        let mut removed = Vec::new();
        for name in names {
            if removed.contains(name) {
                continue;
            }
            let target = Target::Member(name.clone());
            let held = match g.level(level).members.get(name) {
                None => continue,
                Some(lock) => lock.held_by(owner).is_some(),
            };
            if !held {
                let (g2, r) = self.wait_for(
                    g,
                    owner,
                    level,
                    &target,
                    false,
                    DEFAULT_PRIORITY,
                    None,
                    &never,
                );
                g = g2;
                match r {
                    Ok(()) => {}
                    Err(WaitError::Missing) => continue,
                    Err(e) => return Err(wait_to_lock_error(e, level, name)),
                }
            }
            g.delete(level, name);
            removed.push(name.clone());
        }
        Ok(removed)
    }

    /// The names `owner` holds at `level`, sorted (the set-level lock is
    /// not listed).
    pub fn owned(&self, owner: &str, level: Level) -> Vec<String> {
        self.lock_inner().level(level).owned(owner)
    }

    /// Whether `owner` holds anything at `level`, the set-level lock
    /// included (2.5.2 `is_owned`).
    pub fn is_owned(&self, owner: &str, level: Level) -> bool {
        self.lock_inner().level(level).owns_any(owner)
    }

    /// The members of `level`, sorted.
    pub fn names(&self, level: Level) -> Vec<String> {
        self.lock_inner()
            .level(level)
            .members
            .keys()
            .cloned()
            .collect()
    }

    /// Every lock with its mode, owners and waiters, set-level locks
    /// included, nice-sorted by name (2.5.2 `LockMonitor`).
    pub fn info(&self) -> Vec<LockInfo> {
        let g = self.lock_inner();
        let mut all = Vec::new();
        for level in Level::ALL {
            let set = g.level(level);
            let prefix = level.set_name();
            all.push(set.set_lock.info(format!("{prefix}/{SET_LOCK_NAME}")));
            for (name, lock) in &set.members {
                all.push(lock.info(format!("{prefix}/{name}")));
            }
        }
        drop(g);
        all.sort_by(|a, b| nice_cmp(&a.name, &b.name));
        all
    }
}

fn check_modifiable(g: &Inner, owner: &str, level: Level) -> Result<(), LockError> {
    if level == Level::Cluster {
        return Err(LockError::Order(format!(
            "Invalid or immutable level {}",
            level.name()
        )));
    }
    if !g.owns_bgl(owner) {
        return Err(LockError::Order(
            "You must own the BGL before performing other operations".into(),
        ));
    }
    Ok(())
}

fn wait_to_lock_error(e: WaitError, level: Level, name: &str) -> LockError {
    match e {
        WaitError::Timeout => LockError::Timeout,
        WaitError::Canceled => LockError::Canceled,
        WaitError::Missing => LockError::Deleted {
            level,
            name: name.to_string(),
        },
        WaitError::Order(msg) => LockError::Order(msg),
    }
}

/// Compares names with runs of digits as numbers: `node2` < `node10`
/// (2.5.2's `NiceSort`).
fn nice_cmp(a: &str, b: &str) -> Ordering {
    crate::config::nice_sort_key(a).cmp(&crate::config::nice_sort_key(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    use std::sync::mpsc;
    use std::thread;

    fn names(list: &[&str]) -> Names {
        Names::List(list.iter().map(|s| s.to_string()).collect())
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn manager() -> Arc<LockManager> {
        Arc::new(LockManager::new(
            strings(&["inst1", "inst2"]),
            strings(&["g1"]),
            strings(&["node1", "node2", "node3", "node10"]),
        ))
    }

    fn bgl(lm: &LockManager, owner: &str, shared: bool) {
        lm.acquire(
            owner,
            Level::Cluster,
            &names(&[BGL]),
            shared,
            None,
            0,
            &never,
        )
        .unwrap();
    }

    /// Waits until `n` owners wait for lock `name` (the waiters are queued).
    fn wait_pending(lm: &LockManager, name: &str, n: usize) {
        let start = Instant::now();
        loop {
            let info = lm.info();
            let lock = info.iter().find(|l| l.name == name).unwrap();
            if lock.pending.iter().map(|p| p.owners.len()).sum::<usize>() == n {
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "{info:?}");
            thread::sleep(Duration::from_millis(2));
        }
    }

    fn lock_info(lm: &LockManager, name: &str) -> LockInfo {
        lm.info().into_iter().find(|l| l.name == name).unwrap()
    }

    #[test]
    fn the_bgl_comes_first_and_levels_go_up() {
        let lm = manager();
        let err = lm
            .acquire("a", Level::Node, &names(&["node1"]), false, None, 0, &never)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "You must own the Big Ganeti Lock before acquiring any other"
        );
        assert_eq!(err.to_ganeti().class, "ProgrammerError");
        bgl(&lm, "a", true);
        lm.acquire("a", Level::Node, &names(&["node1"]), false, None, 0, &never)
            .unwrap();
        let err = lm
            .acquire(
                "a",
                Level::Instance,
                &names(&["inst1"]),
                false,
                None,
                0,
                &never,
            )
            .unwrap_err();
        assert_eq!(
            err,
            LockError::Order(
                "Cannot acquire locks at a level while owning some at a greater one".into()
            )
        );
        let err = lm
            .acquire("a", Level::Node, &names(&["node2"]), false, None, 0, &never)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Cannot acquire locks in the same set twice (lockset nodes)"
        );
        // The BGL cannot go while a node lock is held.
        let err = lm.release("a", Level::Cluster, None).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("Cannot release the Big Ganeti Lock"));
        assert_eq!(lm.owned("a", Level::Cluster), strings(&[BGL]));
        // Releasing a name not held is refused and changes nothing.
        assert!(matches!(
            lm.release("a", Level::Node, Some(&strings(&["node2"]))),
            Err(LockError::Order(_))
        ));
        assert_eq!(lm.owned("a", Level::Node), strings(&["node1"]));
        lm.release("a", Level::Node, None).unwrap();
        lm.release("a", Level::Cluster, None).unwrap();
        assert!(!lm.is_owned("a", Level::Cluster));
        // A lower level after a higher one is fine again once released.
        bgl(&lm, "a", false);
        lm.acquire(
            "a",
            Level::Instance,
            &names(&["inst2", "inst1"]),
            true,
            None,
            0,
            &never,
        )
        .unwrap();
        lm.acquire("a", Level::NodeGroup, &Names::All, true, None, 0, &never)
            .unwrap();
        lm.acquire("a", Level::Node, &names(&["node3"]), false, None, 0, &never)
            .unwrap();
        assert_eq!(lm.owned("a", Level::Instance), strings(&["inst1", "inst2"]));
        lm.release_all("a");
        for level in Level::ALL {
            assert!(!lm.is_owned("a", level), "{level:?}");
        }
    }

    #[test]
    fn unknown_names_fail_before_anything_is_taken() {
        let lm = manager();
        bgl(&lm, "a", true);
        let err = lm
            .acquire(
                "a",
                Level::Node,
                &names(&["node1", "nodeX"]),
                false,
                None,
                0,
                &never,
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Non-existing lock nodeX in set nodes (it may have been removed)"
        );
        assert_eq!(err.to_ganeti().class, "LockError");
        assert!(lm.owned("a", Level::Node).is_empty());
        assert_eq!(lock_info(&lm, "nodes/node1").mode, None);
        // An empty list takes nothing and is not an error.
        assert_eq!(
            lm.acquire("a", Level::Node, &names(&[]), false, None, 0, &never),
            Ok(vec![])
        );
        assert!(!lm.is_owned("a", Level::Node));
    }

    #[test]
    fn shared_holders_share_and_exclusive_waits() {
        let lm = manager();
        bgl(&lm, "a", true);
        bgl(&lm, "b", true);
        let info = lock_info(&lm, "BGL/BGL");
        assert_eq!(info.mode, Some("shared"));
        assert_eq!(info.owners, strings(&["a", "b"]));
        // An exclusive request must wait for both.
        let err = lm
            .acquire(
                "c",
                Level::Cluster,
                &names(&[BGL]),
                false,
                Some(Duration::ZERO),
                0,
                &never,
            )
            .unwrap_err();
        assert_eq!(err, LockError::Timeout);
        assert!(lock_info(&lm, "BGL/BGL").pending.is_empty());
        lm.release("a", Level::Cluster, None).unwrap();
        lm.release("b", Level::Cluster, None).unwrap();
        lm.acquire(
            "c",
            Level::Cluster,
            &names(&[BGL]),
            false,
            Some(Duration::ZERO),
            0,
            &never,
        )
        .unwrap();
        assert_eq!(lock_info(&lm, "BGL/BGL").mode, Some("exclusive"));
    }

    /// Starts a thread that acquires `lock` at the node level for `owner`
    /// (after the BGL, shared) and reports on `tx` once it holds it.
    fn waiter(
        lm: &Arc<LockManager>,
        owner: &'static str,
        node: &'static str,
        shared: bool,
        priority: i32,
        tx: &mpsc::Sender<&'static str>,
    ) -> thread::JoinHandle<Result<Vec<String>, LockError>> {
        let lm = Arc::clone(lm);
        let tx = tx.clone();
        thread::spawn(move || {
            bgl(&lm, owner, true);
            let r = lm.acquire(
                owner,
                Level::Node,
                &names(&[node]),
                shared,
                None,
                priority,
                &never,
            );
            if r.is_ok() {
                tx.send(owner).unwrap();
            }
            r
        })
    }

    #[test]
    fn waiters_are_served_by_priority_then_in_arrival_order() {
        let lm = manager();
        bgl(&lm, "holder", true);
        lm.acquire(
            "holder",
            Level::Node,
            &names(&["node1"]),
            false,
            None,
            0,
            &never,
        )
        .unwrap();
        let (tx, rx) = mpsc::channel();
        let mut handles = Vec::new();
        for (i, (owner, prio)) in [("low", 10), ("normal1", 0), ("high", -10), ("normal2", 0)]
            .into_iter()
            .enumerate()
        {
            handles.push(waiter(&lm, owner, "node1", false, prio, &tx));
            wait_pending(&lm, "nodes/node1", i + 1);
        }
        let pending: Vec<Vec<String>> = lock_info(&lm, "nodes/node1")
            .pending
            .into_iter()
            .map(|p| p.owners)
            .collect();
        assert_eq!(
            pending,
            vec![
                strings(&["high"]),
                strings(&["normal1"]),
                strings(&["normal2"]),
                strings(&["low"])
            ]
        );
        lm.release("holder", Level::Node, None).unwrap();
        let mut order = Vec::new();
        for _ in 0..4 {
            let owner = rx.recv_timeout(Duration::from_secs(10)).unwrap();
            order.push(owner);
            // Nobody else may hold it meanwhile.
            assert_eq!(lock_info(&lm, "nodes/node1").owners, strings(&[owner]));
            lm.release(owner, Level::Node, None).unwrap();
        }
        assert_eq!(order, ["high", "normal1", "normal2", "low"]);
        for h in handles {
            h.join().unwrap().unwrap();
        }
    }

    #[test]
    fn shared_waiters_of_one_priority_are_granted_together() {
        let lm = manager();
        bgl(&lm, "holder", true);
        lm.acquire(
            "holder",
            Level::Node,
            &names(&["node2"]),
            false,
            None,
            0,
            &never,
        )
        .unwrap();
        let (tx, rx) = mpsc::channel();
        let s1 = waiter(&lm, "s1", "node2", true, 0, &tx);
        wait_pending(&lm, "nodes/node2", 1);
        let x = waiter(&lm, "x", "node2", false, 0, &tx);
        wait_pending(&lm, "nodes/node2", 2);
        // s3 joins the waiting shared group, ahead of x (as 2.5.2).
        let s3 = waiter(&lm, "s3", "node2", true, 0, &tx);
        wait_pending(&lm, "nodes/node2", 3);
        let info = lock_info(&lm, "nodes/node2");
        assert_eq!(
            info.pending,
            vec![
                PendingAcquire {
                    mode: "shared",
                    owners: strings(&["s1", "s3"])
                },
                PendingAcquire {
                    mode: "exclusive",
                    owners: strings(&["x"])
                },
            ]
        );
        assert_eq!(
            info.to_json(),
            json!([
                "nodes/node2",
                "exclusive",
                ["holder"],
                [["shared", ["s1", "s3"]], ["exclusive", ["x"]]]
            ])
        );
        lm.release("holder", Level::Node, None).unwrap();
        let mut got = [
            rx.recv_timeout(Duration::from_secs(10)).unwrap(),
            rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        ];
        got.sort();
        assert_eq!(got, ["s1", "s3"]);
        let info = lock_info(&lm, "nodes/node2");
        assert_eq!(info.mode, Some("shared"));
        assert_eq!(info.owners, strings(&["s1", "s3"]));
        lm.release("s1", Level::Node, None).unwrap();
        assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
        lm.release("s3", Level::Node, None).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), "x");
        lm.release("x", Level::Node, None).unwrap();
        for h in [s1, x, s3] {
            h.join().unwrap().unwrap();
        }
    }

    #[test]
    fn a_better_shared_request_passes_a_waiting_writer_of_shared_holders() {
        let lm = manager();
        bgl(&lm, "reader", true);
        lm.acquire(
            "reader",
            Level::Node,
            &names(&["node1"]),
            true,
            None,
            0,
            &never,
        )
        .unwrap();
        let (tx, rx) = mpsc::channel();
        let x = waiter(&lm, "writer", "node1", false, 0, &tx);
        wait_pending(&lm, "nodes/node1", 1);
        // Same priority: queued behind the writer.
        bgl(&lm, "late", true);
        assert_eq!(
            lm.acquire(
                "late",
                Level::Node,
                &names(&["node1"]),
                true,
                Some(Duration::ZERO),
                0,
                &never
            ),
            Err(LockError::Timeout)
        );
        // Better priority: goes ahead of the writer and is compatible.
        bgl(&lm, "urgent", true);
        lm.acquire(
            "urgent",
            Level::Node,
            &names(&["node1"]),
            true,
            Some(Duration::ZERO),
            -10,
            &never,
        )
        .unwrap();
        lm.release("reader", Level::Node, None).unwrap();
        assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
        lm.release("urgent", Level::Node, None).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), "writer");
        lm.release("writer", Level::Node, None).unwrap();
        x.join().unwrap().unwrap();
    }

    #[test]
    fn a_timeout_leaves_nothing_held_at_the_level() {
        let lm = manager();
        bgl(&lm, "a", true);
        bgl(&lm, "b", true);
        lm.acquire("a", Level::Node, &names(&["node2"]), false, None, 0, &never)
            .unwrap();
        let start = Instant::now();
        let err = lm
            .acquire(
                "b",
                Level::Node,
                &names(&["node3", "node1", "node2"]),
                false,
                Some(Duration::from_millis(200)),
                0,
                &never,
            )
            .unwrap_err();
        let took = start.elapsed();
        assert_eq!(err, LockError::Timeout);
        assert!(took >= Duration::from_millis(200), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
        assert!(lm.owned("b", Level::Node).is_empty());
        assert!(!lm.is_owned("b", Level::Node));
        // node1 (acquired before node2 in sorted order) was given back.
        assert_eq!(lock_info(&lm, "nodes/node1").mode, None);
        assert!(lock_info(&lm, "nodes/node2").pending.is_empty());
        // The same for a whole-level request: its set-level lock goes too.
        assert_eq!(
            lm.acquire(
                "b",
                Level::Node,
                &Names::All,
                true,
                Some(Duration::from_millis(20)),
                0,
                &never
            ),
            Err(LockError::Timeout)
        );
        assert!(!lm.is_owned("b", Level::Node));
        assert_eq!(lock_info(&lm, "nodes/[lockset]").mode, None);
    }

    #[test]
    fn a_withdrawn_waiter_lets_the_next_ones_through() {
        let lm = manager();
        bgl(&lm, "reader", true);
        lm.acquire(
            "reader",
            Level::Node,
            &names(&["node1"]),
            true,
            None,
            0,
            &never,
        )
        .unwrap();
        let lm2 = Arc::clone(&lm);
        let writer = thread::spawn(move || {
            bgl(&lm2, "writer", true);
            lm2.acquire(
                "writer",
                Level::Node,
                &names(&["node1"]),
                false,
                Some(Duration::from_millis(300)),
                0,
                &never,
            )
        });
        wait_pending(&lm, "nodes/node1", 1);
        let (tx, rx) = mpsc::channel();
        let reader2 = waiter(&lm, "reader2", "node1", true, 0, &tx);
        wait_pending(&lm, "nodes/node1", 2);
        assert_eq!(writer.join().unwrap(), Err(LockError::Timeout));
        // reader2 is compatible with the holder: granted as the writer left.
        assert_eq!(rx.recv_timeout(Duration::from_secs(2)).unwrap(), "reader2");
        reader2.join().unwrap().unwrap();
    }

    #[test]
    fn cancel_is_polled_while_waiting() {
        let lm = manager();
        bgl(&lm, "a", false);
        let flag = Arc::new(AtomicBool::new(false));
        let polls = Arc::new(AtomicUsize::new(0));
        let (lm2, flag2, polls2) = (Arc::clone(&lm), Arc::clone(&flag), Arc::clone(&polls));
        let h = thread::spawn(move || {
            let cancel = || {
                polls2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                flag2.load(std::sync::atomic::Ordering::SeqCst)
            };
            let r = lm2.acquire("b", Level::Cluster, &names(&[BGL]), true, None, 0, &cancel);
            (r, Instant::now())
        });
        wait_pending(&lm, "BGL/BGL", 1);
        thread::sleep(CANCEL_POLL * 5 + CANCEL_POLL / 2);
        let polled = polls.load(std::sync::atomic::Ordering::SeqCst);
        // About once per CANCEL_POLL while blocked (5 or 6 here); the margin
        // is for a loaded machine that schedules the waiter late.
        assert!(polled >= 3, "polled {polled} times");
        let set = Instant::now();
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
        let (r, at) = h.join().unwrap();
        assert_eq!(r, Err(LockError::Canceled));
        let late = at.duration_since(set);
        assert!(late <= CANCEL_POLL + Duration::from_secs(1), "{late:?}");
        assert!(lock_info(&lm, "BGL/BGL").pending.is_empty());
        assert!(!lm.is_owned("b", Level::Cluster));
        // A free lock is granted without asking the predicate.
        let asked = AtomicBool::new(false);
        let never_asked = || {
            asked.store(true, std::sync::atomic::Ordering::SeqCst);
            true
        };
        lm.acquire(
            "a",
            Level::Node,
            &names(&["node1"]),
            false,
            None,
            0,
            &never_asked,
        )
        .unwrap();
        assert!(!asked.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[test]
    fn a_timeout_of_zero_takes_a_free_lock() {
        let lm = manager();
        lm.acquire(
            "a",
            Level::Cluster,
            &Names::All,
            false,
            Some(Duration::ZERO),
            0,
            &never,
        )
        .unwrap();
        assert_eq!(lock_info(&lm, "BGL/[lockset]").owners, strings(&["a"]));
        // A timeout too large for the clock means no timeout.
        lm.acquire(
            "a",
            Level::Node,
            &names(&["node1"]),
            false,
            Some(Duration::MAX),
            0,
            &never,
        )
        .unwrap();
    }

    #[test]
    fn all_holds_the_set_lock_so_adding_waits() {
        let lm = manager();
        bgl(&lm, "a", true);
        let got = lm
            .acquire("a", Level::Node, &Names::All, true, None, 0, &never)
            .unwrap();
        assert_eq!(got, strings(&["node1", "node10", "node2", "node3"]));
        assert_eq!(lock_info(&lm, "nodes/[lockset]").mode, Some("shared"));
        // A shared whole-level holder cannot add.
        assert!(matches!(
            lm.add("a", Level::Node, &strings(&["node4"]), false, false),
            Err(LockError::Order(_))
        ));
        let lm2 = Arc::clone(&lm);
        let adder = thread::spawn(move || {
            bgl(&lm2, "b", true);
            lm2.add("b", Level::Node, &strings(&["node4"]), true, false)
        });
        wait_pending(&lm, "nodes/[lockset]", 1);
        assert!(!lm.names(Level::Node).contains(&"node4".to_string()));
        lm.release("a", Level::Node, None).unwrap();
        adder.join().unwrap().unwrap();
        assert_eq!(lm.owned("b", Level::Node), strings(&["node4"]));
        assert_eq!(lock_info(&lm, "nodes/node4").mode, Some("exclusive"));
        assert_eq!(lock_info(&lm, "nodes/[lockset]").mode, None);
        // An exclusive whole-level holder adds while holding it.
        lm.release("b", Level::Node, None).unwrap();
        lm.acquire("a", Level::Node, &Names::All, false, None, 0, &never)
            .unwrap();
        lm.add("a", Level::Node, &strings(&["node5"]), true, true)
            .unwrap();
        assert!(lm.owned("a", Level::Node).contains(&"node5".to_string()));
        assert_eq!(lock_info(&lm, "nodes/node5").mode, Some("shared"));
    }

    #[test]
    fn adding_an_existing_name_fails_and_adds_nothing() {
        let lm = manager();
        let err = lm
            .add("a", Level::Node, &strings(&["node9"]), false, false)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "You must own the BGL before performing other operations"
        );
        bgl(&lm, "a", false);
        let err = lm
            .add("a", Level::Cluster, &strings(&["x"]), false, false)
            .unwrap_err();
        assert_eq!(err.to_string(), "Invalid or immutable level cluster");
        let err = lm
            .add("a", Level::Node, &strings(&["node9", "node1"]), true, false)
            .unwrap_err();
        assert_eq!(
            err,
            LockError::Exists {
                level: Level::Node,
                names: strings(&["node1"])
            }
        );
        assert_eq!(
            err.to_string(),
            "duplicate add(set([u'node1'])) on lockset nodes"
        );
        assert!(!lm.names(Level::Node).contains(&"node9".to_string()));
        assert!(!lm.is_owned("a", Level::Node));
        assert_eq!(lock_info(&lm, "nodes/[lockset]").mode, None);
        // Not acquired: free for anyone.
        lm.add(
            "a",
            Level::Instance,
            &strings(&["inst3", "inst3"]),
            false,
            false,
        )
        .unwrap();
        assert_eq!(lock_info(&lm, "instances/inst3").mode, None);
        assert!(!lm.is_owned("a", Level::Instance));
        // Holding a node lock forbids adding at a lower level.
        lm.acquire("a", Level::Node, &names(&["node1"]), false, None, 0, &never)
            .unwrap();
        assert!(matches!(
            lm.add("a", Level::Instance, &strings(&["inst4"]), false, false),
            Err(LockError::Order(_))
        ));
    }

    #[test]
    fn removing_a_held_lock_fails_its_waiters() {
        let lm = manager();
        bgl(&lm, "a", true);
        lm.acquire(
            "a",
            Level::Node,
            &names(&["node1", "node2"]),
            false,
            None,
            0,
            &never,
        )
        .unwrap();
        let lm2 = Arc::clone(&lm);
        let one = thread::spawn(move || {
            bgl(&lm2, "b", true);
            lm2.acquire("b", Level::Node, &names(&["node1"]), true, None, 0, &never)
        });
        let lm3 = Arc::clone(&lm);
        let all = thread::spawn(move || {
            bgl(&lm3, "c", true);
            lm3.acquire("c", Level::Node, &Names::All, true, None, 0, &never)
        });
        wait_pending(&lm, "nodes/node1", 2);
        // Not all held: refused.
        assert!(matches!(
            lm.remove("a", Level::Node, &strings(&["node1", "node3"])),
            Err(LockError::Order(_))
        ));
        assert_eq!(
            lm.remove("a", Level::Node, &strings(&["node1"])),
            Ok(strings(&["node1"]))
        );
        let err = one.join().unwrap().unwrap_err();
        assert_eq!(
            err,
            LockError::Deleted {
                level: Level::Node,
                name: "node1".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "Non-existing lock node1 in set nodes (it may have been removed)"
        );
        assert!(!lm.is_owned("b", Level::Node));
        // The whole-level waiter skips the removed lock and waits for node2.
        lm.release("a", Level::Node, None).unwrap();
        assert_eq!(
            all.join().unwrap().unwrap(),
            strings(&["node10", "node2", "node3"])
        );
        assert!(!lm.names(Level::Node).contains(&"node1".to_string()));
        assert!(lm.info().iter().all(|l| l.name != "nodes/node1"));
    }

    #[test]
    fn removing_an_unheld_lock_waits_for_it() {
        let lm = manager();
        bgl(&lm, "a", true);
        bgl(&lm, "b", true);
        lm.acquire(
            "b",
            Level::Instance,
            &names(&["inst1"]),
            true,
            None,
            0,
            &never,
        )
        .unwrap();
        // Sharing is not enough to delete.
        assert_eq!(
            lm.remove("b", Level::Instance, &strings(&["inst1"])),
            Err(LockError::Order(
                "Cannot delete() a lock while sharing it".into()
            ))
        );
        let lm2 = Arc::clone(&lm);
        let remover = thread::spawn(move || {
            lm2.remove("a", Level::Instance, &strings(&["inst1", "gone", "inst1"]))
        });
        wait_pending(&lm, "instances/inst1", 1);
        lm.release("b", Level::Instance, None).unwrap();
        assert_eq!(remover.join().unwrap(), Ok(strings(&["inst1"])));
        assert_eq!(lm.names(Level::Instance), strings(&["inst2"]));
        assert!(!lm.is_owned("a", Level::Instance));
        // Holding a level above forbids removing from a lower one.
        lm.acquire("a", Level::Node, &names(&["node1"]), false, None, 0, &never)
            .unwrap();
        assert!(matches!(
            lm.remove("a", Level::Instance, &strings(&["inst2"])),
            Err(LockError::Order(_))
        ));
        // A removed name can be added again.
        lm.release("a", Level::Node, None).unwrap();
        lm.add("a", Level::Instance, &strings(&["inst1"]), true, false)
            .unwrap();
        assert_eq!(lm.owned("a", Level::Instance), strings(&["inst1"]));
    }

    #[test]
    fn info_lists_every_lock_nicely_sorted() {
        let lm = manager();
        bgl(&lm, "Jq1/Job5/TEST_DELAY", true);
        let rows: Vec<Value> = lm.info().iter().map(LockInfo::to_json).collect();
        let names: Vec<&str> = rows.iter().map(|r| r[0].as_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "BGL/BGL",
                "BGL/[lockset]",
                "instances/[lockset]",
                "instances/inst1",
                "instances/inst2",
                "nodegroups/[lockset]",
                "nodegroups/g1",
                "nodes/[lockset]",
                "nodes/node1",
                "nodes/node2",
                "nodes/node3",
                "nodes/node10",
            ]
        );
        assert_eq!(
            rows[0],
            json!(["BGL/BGL", "shared", ["Jq1/Job5/TEST_DELAY"], []])
        );
        assert_eq!(rows[1], json!(["BGL/[lockset]", null, null, []]));
    }

    #[test]
    fn the_manager_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<LockManager>();
        shared::<LockError>();
    }

    #[test]
    fn nice_sort_compares_digit_runs_as_numbers() {
        let mut v = strings(&["node10", "node9", "node1", "node", "a2b", "a10", "node01"]);
        v.sort_by(|a, b| nice_cmp(a, b));
        assert_eq!(
            v,
            strings(&["a2b", "a10", "node", "node1", "node01", "node9", "node10"])
        );
    }
}
